// What the two WebSocketServerHelper servers (roomcast's and Ignis's) share: both
// libraries have the same public API, so they emit and are served the same way.

import { EVENT, type IPublishRequest, makeData, ROOM } from '../lib/shared.ts';
import { control, watchParent } from './control.ts';

/** The part of a WebSocketServerHelper the benchmark drives. */
export interface IBenchHelper {
  sendToRoom(opts: { room: string; event: string; data: unknown; exclude?: string[] }): void;
  broadcast(opts: { event: string; data: unknown }): void;
  send(opts: { destination?: string; payload: { topic: string; data: unknown } }): void;
  getClientsByRoom(opts: { room: string }): unknown[];
  getPath(): string;
  getBunWebSocketHandler(): unknown;
}

function publishThrough(helper: IBenchHelper, req: IPublishRequest): void {
  for (let i = 0; i < req.count; i++) {
    const data = makeData(req.seq + i, req.size);
    switch (req.mode) {
      case 'room':
        helper.sendToRoom({ room: req.room, event: EVENT, data });
        break;
      case 'room-exclude':
        helper.sendToRoom({
          room: req.room,
          event: EVENT,
          data,
          exclude: req.exclude === undefined ? [] : [req.exclude],
        });
        break;
      case 'broadcast':
        helper.broadcast({ event: EVENT, data });
        break;
      case 'send':
        helper.send({ destination: req.room, payload: { topic: EVENT, data } });
        break;
    }
  }
}

/** Puts the helper's WebSocket handler and the control channel on `server`, then reports READY. */
export function serveHelper(
  server: ReturnType<typeof Bun.serve<{ clientId: string }>>,
  helper: IBenchHelper,
  clients: () => number,
): void {
  const path = helper.getPath();
  const publish = (req: IPublishRequest) => publishThrough(helper, req);
  server.reload({
    async fetch(req, srv) {
      const roomMembers = () => helper.getClientsByRoom({ room: ROOM }).length;
      const answer = await control(req, { clients, publish, roomMembers });
      if (answer) return answer;
      if (new URL(req.url).pathname === path) {
        if (srv.upgrade(req, { data: { clientId: crypto.randomUUID() } })) return undefined;
        return new Response('upgrade failed', { status: 500 });
      }
      return new Response('not found', { status: 404 });
    },
    websocket: helper.getBunWebSocketHandler() as never,
  });
  watchParent();
  console.log(`READY ${server.port}`);
}
