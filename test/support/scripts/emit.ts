// Runs WebSocketEmitter in its own process: `bun emit.ts <redisPort> <json-args>`.
import { RedisHelper, silentLogger, WebSocketEmitter } from '../../../src/index.ts';

const [port, json] = process.argv.slice(2);
const calls = JSON.parse(json ?? '[]') as Array<{
  method: 'toClient' | 'toUser' | 'toRoom' | 'broadcast';
  args: never;
}>;
const redis = new RedisHelper({
  name: 'emit-cli',
  host: '127.0.0.1',
  port: Number(port),
  logger: silentLogger,
});
const emitter = new WebSocketEmitter({
  identifier: 'emit-cli',
  redisConnection: redis,
  logger: silentLogger,
});
await emitter.configure();
for (const call of calls) await emitter[call.method](call.args);
await emitter.shutdown();
await redis.disconnect();
console.log('emitted', calls.length);
