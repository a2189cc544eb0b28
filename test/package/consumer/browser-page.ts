// Copied into a Bun project that installed the packed tarball: a page that loads the prebuilt
// browser bundle straight from node_modules/roomcast/dist/browser/, and a server for it to talk to.
import { WebSocketServerHelper } from 'roomcast';

const bundleDir = new URL('./node_modules/roomcast/dist/browser/', import.meta.url);
const page = `<!doctype html>
<title>loading</title>
<script type="module">
  import { createClient } from '/roomcast-client.js';
  const client = createClient(location.origin + '/ws', { auth: { token: 'ok' } });
  client.on('echo', (data) => { document.title = 'echo:' + data.text; });
  const { userId } = await client.ready;
  client.emit('say', { text: 'from the prebuilt bundle as ' + userId });
</script>`;

const server = Bun.serve<{ clientId: string }>({
  hostname: '127.0.0.1',
  port: 0,
  fetch: () => new Response('starting', { status: 503 }),
  websocket: { message() {} },
});
const ws = new WebSocketServerHelper({
  identifier: 'browser-page',
  server,
  authenticateFn: ({ token }) => (token === 'ok' ? { userId: 'grace' } : null),
  messageHandler: ({ clientId, message }) => {
    if (message.event === 'say') ws.sendToClient({ clientId, event: 'echo', data: message.data });
  },
});
await ws.configure();
server.reload({
  fetch(request, srv) {
    const { pathname } = new URL(request.url);
    if (pathname === ws.getPath()) {
      return srv.upgrade(request, { data: { clientId: crypto.randomUUID() } })
        ? undefined
        : new Response('Upgrade failed', { status: 500 });
    }
    if (pathname === '/') return new Response(page, { headers: { 'content-type': 'text/html' } });
    if (pathname === '/roomcast-client.js' || pathname === '/roomcast-client.js.map') {
      const type = pathname.endsWith('.map') ? 'application/json' : 'text/javascript';
      return new Response(Bun.file(new URL(`.${pathname}`, bundleDir)), {
        headers: { 'content-type': type },
      });
    }
    return new Response('Not found', { status: 404 });
  },
  websocket: ws.getBunWebSocketHandler(),
});
console.log(JSON.stringify({ listening: server.port }));
