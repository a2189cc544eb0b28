// Probe: what the bus's depth check adds to decoding an envelope from Redis, by payload shape.
// Prints, per payload, decodeEnvelope's time and jsonDepthExceeds' time on the same text. In one
// process, no Redis; writes nothing.   bun run bench/probes/bus-guard-cost.ts
import { decodeEnvelope, encodeEnvelope } from '../../src/bus/envelope.ts';
import { jsonDepthExceeds } from '../../src/utils/json.ts';

function bench(fn: () => unknown, n: number) {
  for (let i = 0; i < 2000; i++) fn();
  const t = performance.now();
  for (let i = 0; i < n; i++) fn();
  return ((performance.now() - t) * 1e3) / n;
}
for (const [name, data] of [
  ['64 B', { s: 1, p: 'x'.repeat(52) }],
  ['1 KB chat', { user: 'someone', text: 'lorem ipsum '.repeat(80), at: 123 }],
  [
    '1 KB structured',
    { items: Array.from({ length: 20 }, (_, i) => ({ id: i, name: `n${i}`, tags: ['a', 'b'] })) },
  ],
  [
    '9 KB structured',
    { items: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })) },
  ],
] as const) {
  const env = encodeEnvelope(
    { serverId: 'x', type: 'room', target: 'r', event: 'e', data },
    JSON.stringify(data),
  );
  const scan = Math.min(...[1, 2, 3].map(() => bench(() => jsonDepthExceeds(env, 128), 50_000)));
  const dec = Math.min(...[1, 2, 3].map(() => bench(() => decodeEnvelope(env), 50_000)));
  console.log(
    `${name} (${env.length} chars): decode ${dec.toFixed(2)} us, depth scan ${scan.toFixed(2)} us (+${((scan / dec) * 100).toFixed(0)}%)`,
  );
}
