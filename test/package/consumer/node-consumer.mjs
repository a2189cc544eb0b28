// Runs under Node from an empty project that installed the packed tarball: the
// emitter publishes through Redis and a roomcast/client connected to a Bun
// server (also built from the installed package) must receive it.
//
//   node node-consumer.mjs <ws url> <redis port>
//
// Prints one JSON line with what it saw; exits non-zero on any failure.
import { RedisHelper, WebSocketEmitter, WebSocketServerHelper } from 'roomcast';
import { createClient } from 'roomcast/client';

const [url, redisPort] = process.argv.slice(2);
const within = (promise, ms, what) =>
  Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)),
  ]);

const report = { runtime: process.release.name, bun: typeof process.versions.bun };
try {
  new WebSocketServerHelper({ identifier: 'node' });
  report.serverHelper = 'constructed';
} catch (error) {
  report.serverHelper = error.message;
}

const client = createClient(url, { auth: () => ({ token: 'ok' }), reconnect: false });
report.userId = (await within(client.ready, 5_000, 'connected')).userId;
report.joined = await within(client.join(['public-lobby']), 5_000, 'join');
const notice = new Promise((resolve) => client.once('notice', resolve));

const redis = new RedisHelper({
  name: 'node-emitter',
  host: '127.0.0.1',
  port: Number(redisPort),
  autoConnect: false,
});
const emitter = new WebSocketEmitter({ identifier: 'node-emitter', redisConnection: redis });
await within(emitter.configure(), 5_000, 'the emitter to connect');
await emitter.toRoom({ room: 'public-lobby', event: 'notice', data: { text: 'from node' } });
report.notice = await within(notice, 5_000, 'the notice');

client.close();
await emitter.shutdown();
await redis.disconnect();
console.log(JSON.stringify(report));
process.exit(0);
