// Minimal runnable example: one Bun server, the helper in single-instance mode
// (or over Redis when REDIS_URL is set), and a page that authenticates, joins a
// room and receives the server's ticks.
import { RedisHelper, WebSocketServerHelper } from '../../src/index.ts';

const port = Number(process.env.PORT ?? 3000);
const redisUrl = process.env.REDIS_URL ? new URL(process.env.REDIS_URL) : undefined;
const helper = new WebSocketServerHelper({
  identifier: 'basic-example',
  ...(redisUrl
    ? {
        redisConnection: new RedisHelper({
          name: 'basic',
          host: redisUrl.hostname,
          port: Number(redisUrl.port || 6379),
        }),
      }
    : {}),
  authenticateFn: ({ name }) => (typeof name === 'string' && name.length > 0 ? { userId: name } : null),
  validateRoomFn: ({ rooms }) => rooms.filter((room) => room.startsWith('public-')),
  messageHandler: ({ userId, message }) => {
    if (message.event === 'say')
      helper.send({
        destination: 'public-lobby',
        payload: { topic: 'said', data: { userId, text: message.data } },
      });
  },
});
await helper.configure();

const page = `<!doctype html><meta charset="utf-8"><title>roomcast basic example</title>
<pre id="log"></pre><script>
const log = (line) => (document.getElementById('log').textContent += line + '\\n');
const ws = new WebSocket('ws://' + location.host + '/ws');
ws.onopen = () => ws.send(JSON.stringify({ event: 'authenticate', data: { name: 'guest-' + Math.floor(Math.random() * 1000) } }));
ws.onmessage = (e) => {
  const msg = JSON.parse(e.data);
  log(msg.event + ' ' + JSON.stringify(msg.data));
  if (msg.event === 'connected') {
    ws.send(JSON.stringify({ event: 'join', data: { rooms: ['public-lobby'] } }));
    setInterval(() => ws.send(JSON.stringify({ event: 'heartbeat' })), 30000);
  }
};
ws.onclose = (e) => log('closed ' + e.code);
</script>`;

// The helper's path goes to handleUpgrade (Origin check, client id, upgrade); the rest is the page.
const server = Bun.serve({
  hostname: process.env.HOST ?? '127.0.0.1',
  port,
  fetch(req, srv) {
    if (new URL(req.url).pathname === helper.getPath()) return helper.handleUpgrade(req, srv);
    return new Response(page, { headers: { 'content-type': 'text/html; charset=utf-8' } });
  },
  websocket: helper.getBunWebSocketHandler(),
});

setInterval(
  () => helper.sendToRoom({ room: 'public-lobby', event: 'tick', data: { at: new Date().toISOString() } }),
  2000,
);
console.log(`basic example on http://${server.hostname}:${server.port}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    await helper.shutdown();
    server.stop(true);
    process.exit(0);
  });
}
