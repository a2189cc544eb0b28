// Probe: the helper's own JavaScript per connection, without the network: a WebSocketServerHelper on
// fake sockets (test/support/fake-socket.ts, no Bun socket, no native subscription or write), driven
// through its lifecycle entry points exactly as Bun's callbacks drive it: open, then the
// `authenticate` frame, then (untimed) the close. authenticateFn and clientConnectedFn are the
// benchmark server's. What the real connect path costs beyond this is native (upgrade, topic
// subscriptions, frame writes: the floor's too), the callbacks' crossing into JavaScript, and GC.
//   bun run bench/probes/connect-js-cost.ts [--clients 5000] [--rounds 8]

import { WebSocketServerHelper } from '../../src/server/websocket-server-helper.ts';
import { FakeServer, FakeSocket } from '../../test/support/fake-socket.ts';

const arg = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(name);
  const value = at >= 0 ? Number(process.argv[at + 1]) : fallback;
  return Number.isInteger(value) && value > 0 ? value : fallback;
};
const CLIENTS = arg('--clients', 5_000);
const ROUNDS = arg('--rounds', 8);

const quiet = () => {};
const helper = new WebSocketServerHelper<{ token?: string; user?: string }, { key?: Uint8Array }>({
  identifier: 'probe',
  server: new FakeServer() as never,
  logger: {
    debug: quiet,
    info: quiet,
    warn: quiet,
    error: (...args) => console.error(...args),
    isLevelEnabled: (level) => level === 'error',
  },
  heartbeatTimeout: 600_000,
  authenticateFn: (data) => (data.token === 'ok' ? { userId: data.user } : null),
  clientConnectedFn: ({ metadata }) => {
    if (metadata?.key) throw new Error('no encrypted clients in this probe');
  },
});

function round(tag: number): number {
  const sockets = Array.from({ length: CLIENTS }, () => new FakeSocket(crypto.randomUUID()));
  const frames = sockets.map((_, i) =>
    JSON.stringify({ event: 'authenticate', data: { token: 'ok', user: `u${tag}-${i}` } }),
  );
  const started = performance.now();
  for (let i = 0; i < CLIENTS; i++) {
    const socket = sockets[i]!;
    helper.onClientConnect({ clientId: socket.clientId, socket: socket as never });
    helper.onClientMessage({ clientId: socket.clientId, raw: frames[i], socket: socket as never });
  }
  const us = ((performance.now() - started) * 1000) / CLIENTS;
  if (helper.getStats().clients !== CLIENTS) throw new Error('not every client was admitted');
  for (const socket of sockets) {
    socket.readyState = 3;
    helper.onClientDisconnect({ clientId: socket.clientId, socket: socket as never, code: 1000 });
  }
  return us;
}

const samples: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const us = round(r);
  // The first rounds still run unoptimized code; the median of the rest is the figure.
  if (r >= 2) samples.push(us);
  console.log(`round ${r + 1}: ${us.toFixed(2)} µs per connect + authenticate (helper JavaScript only)`);
}
samples.sort((a, b) => a - b);
console.log(`median of rounds 3-${ROUNDS}: ${samples[Math.floor(samples.length / 2)]!.toFixed(2)} µs`);
await helper.shutdown();
