import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { WebSocketCloseCodes } from '../../src/index.ts';
import { startEmitter } from '../history/support.ts';
import { RedisServer } from '../support/redis-server.ts';
import { type ITestServer, startServer } from '../support/server.ts';
import { closeAllClients, trackedClient, waitForState } from './support.ts';

/**
 * `disconnect({ reconnect: false })` closes with 4008, which the real SDK takes as final; a
 * default disconnect (1000) still makes it reconnect with a new connection id. Through the
 * helper directly and through the emitter's server command (over a real redis-server).
 */

let redisServer: RedisServer;
let server: ITestServer;
let emitter: Awaited<ReturnType<typeof startEmitter>>;

beforeAll(async () => {
  redisServer = await RedisServer.start();
  server = await startServer({ redis: { host: '127.0.0.1', port: redisServer.port } });
  emitter = await startEmitter(redisServer.port, () => null);
});

afterEach(() => closeAllClients());

afterAll(async () => {
  await emitter.stop();
  await server.stop();
  await redisServer.stop();
});

async function connectedClient() {
  const tracked = trackedClient(server.url);
  await tracked.client.ready;
  const id = tracked.client.connection!.id;
  return { ...tracked, id };
}

describe('disconnect({ reconnect: false })', () => {
  test('the helper closes with 4008 and the SDK stays disconnected', async () => {
    const { client, id } = await connectedClient();
    const disconnected = waitForState(client, 'disconnected', 5_000);
    const result = await server.helper.disconnect({ clientId: id, reconnect: false, wait: 200 });
    expect(result.affected).toBe(1);
    const change = await disconnected;
    expect(change.close?.code).toBe(WebSocketCloseCodes.NO_RECONNECT);
    // Well past the SDK's first reconnect delay (30 ms in these tests): still nothing.
    await Bun.sleep(800);
    expect(client.state).toBe('disconnected');
    expect(server.helper.getClients().size).toBe(0);
  });

  test("the emitter's server command closes with 4008 and the SDK stays disconnected", async () => {
    const { client, id } = await connectedClient();
    const disconnected = waitForState(client, 'disconnected', 5_000);
    await emitter.emitter.disconnect({ clientId: id, reconnect: false });
    expect((await disconnected).close?.code).toBe(4008);
    await Bun.sleep(800);
    expect(client.state).toBe('disconnected');
    // The application may still connect again on purpose.
    client.reconnect();
    await waitForState(client, 'connected', 5_000);
  });

  test('a default disconnect still makes the SDK reconnect (with a new id)', async () => {
    const { client, id } = await connectedClient();
    const reconnecting = waitForState(client, 'reconnecting', 5_000);
    await server.helper.disconnect({ clientId: id, wait: 200 });
    expect((await reconnecting).close?.code).toBe(1000);
    await waitForState(client, 'connected', 5_000);
    expect(client.connection!.id).not.toBe(id);
  });

  test('reconnect: false with another code, or not a boolean, is refused', async () => {
    await expect(server.helper.disconnect({ clientId: 'x', reconnect: false, code: 4000 })).rejects.toThrow(
      /reconnect: false closes with 4008/,
    );
    await expect(
      server.helper.disconnect({ clientId: 'x', reconnect: 'no' as unknown as boolean }),
    ).rejects.toThrow(/reconnect must be a boolean/);
    await expect(emitter.emitter.disconnect({ userId: 'u', reconnect: false, code: 1000 })).rejects.toThrow(
      /4008/,
    );
  });
});
