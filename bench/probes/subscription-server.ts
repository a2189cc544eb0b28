// A Bun server for the subscription-cost probe: every connection subscribes the
// topics its mode names, then gets one frame. Reads "measure" lines on stdin and
// answers with its RSS (after a full GC) and CPU time so far, as one JSON line.

const mode = process.argv[2] ?? 'floor';
const ownTopic = mode === 'own-id' || mode === 'helper-set';
const sharedTopics = mode === 'shared-2' || mode === 'helper-set';

const server = Bun.serve<{ id: string }>({
  hostname: '127.0.0.1',
  port: 0,
  fetch(req, srv) {
    return srv.upgrade(req, { data: { id: crypto.randomUUID() } })
      ? undefined
      : new Response('no', { status: 400 });
  },
  websocket: {
    open(ws) {
      ws.subscribe('all');
      if (ownTopic) ws.subscribe(ws.data.id);
      if (sharedTopics) {
        ws.subscribe('room-a');
        ws.subscribe('room-b');
      }
      ws.send('ok');
    },
    message() {},
  },
});

function sample(): string {
  Bun.gc(true);
  const cpu = process.cpuUsage();
  return JSON.stringify({ rss: process.memoryUsage().rss, cpuUs: cpu.user + cpu.system });
}

console.log(JSON.stringify({ port: server.port }));
let pending = '';
process.stdin.on('data', (chunk) => {
  pending += chunk.toString();
  while (pending.includes('\n')) {
    pending = pending.slice(pending.indexOf('\n') + 1);
    console.log(sample());
  }
});
process.stdin.on('end', () => process.exit(0));
