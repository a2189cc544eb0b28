import { RedisHelper, silentLogger, type THistoryFn, WebSocketEmitter } from '../../src/index.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer, type TTestServerOptions } from '../support/server.ts';

const validateRoomFn = ({ rooms }: { rooms: string[] }) => rooms;

/** A configured emitter on Redis at `port` with `historyFn`; `stop()` shuts it and its connection. */
export async function startEmitter(
  port: number,
  historyFn: THistoryFn,
): Promise<{ emitter: WebSocketEmitter; stop: () => Promise<void> }> {
  const redis = new RedisHelper({
    name: 'emitter',
    host: '127.0.0.1',
    port,
    autoConnect: false,
    logger: silentLogger,
  });
  const emitter = new WebSocketEmitter({ redisConnection: redis, logger: silentLogger, historyFn });
  await emitter.configure();
  return {
    emitter,
    async stop() {
      await emitter.shutdown();
      await redis.disconnect();
    },
  };
}

/** A fresh redis-server, two instances (every join granted) and an emitter, all with `historyFn`. */
export async function startHistoryPair(
  historyFn: THistoryFn,
  serverOptions: Partial<TTestServerOptions> = {},
): Promise<{
  redisServer: RedisServer;
  a: ITestServer;
  b: ITestServer;
  emitter: WebSocketEmitter;
  stop: () => Promise<void>;
}> {
  const redisServer = await RedisServer.start();
  const redis = { host: '127.0.0.1', port: redisServer.port };
  const a = await startServer({ redis, validateRoomFn, historyFn, ...serverOptions });
  const b = await startServer({ redis, validateRoomFn, historyFn, ...serverOptions });
  const { emitter, stop } = await startEmitter(redisServer.port, historyFn);
  return {
    redisServer,
    a,
    b,
    emitter,
    async stop() {
      await stop();
      await a.stop();
      await b.stop();
      await redisServer.stop();
    },
  };
}
