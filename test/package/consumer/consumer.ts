// Type-checked (not run) against the shipped declarations of an installed tarball,
// with no Bun types: what an application on Node sees from `roomcast` and `roomcast/client`.

import type { IStreamPosition, IWebSocketServerOptions, TWebSocketAuthenticateFn } from 'roomcast';
import { RedisHelper, WebSocketEmitter, WebSocketEvents, WebSocketServerHelper } from 'roomcast';
import { createClient, RoomcastClientError } from 'roomcast/client';
// The prebuilt browser bundle carries the same types as roomcast/client.
import { createClient as createBrowserClient, type RoomcastClient } from 'roomcast/client/browser';

const fromBundle: RoomcastClient = createBrowserClient('wss://chat.example.com/ws', { autoConnect: false });
fromBundle.close();

const redisConnection = new RedisHelper({ name: 'jobs', host: '127.0.0.1', port: 6379, autoConnect: false });
const emitter = new WebSocketEmitter({ identifier: 'jobs', redisConnection });
// Resolves to the publication's position when the room keeps history (historyFn), else undefined.
const sent: Promise<IStreamPosition | undefined> = emitter.toRoom({
  room: 'lobby',
  event: 'notice',
  data: { text: 'hi' },
});
void sent;
// @ts-expect-error toRoom needs a room
void emitter.toRoom({ event: 'notice', data: 1 });

const authenticate: TWebSocketAuthenticateFn = async (data) =>
  data.token === 'ok' ? { userId: 'ada' } : null;
const options: Pick<IWebSocketServerOptions, 'identifier' | 'authenticateFn'> = {
  identifier: 'x',
  authenticateFn: authenticate,
};
void options;
// @ts-expect-error the helper's options need at least an identifier, a server and authenticateFn
void new WebSocketServerHelper({});

const event: string = WebSocketEvents.AUTHENTICATE;
void event;

interface IFromServer {
  notice: { text: string };
}
const client = createClient<IFromServer>('ws://127.0.0.1:3000/ws', { auth: () => ({ token: 'ok' }) });
client.on('notice', ({ text }) => {
  const upper: string = text.toUpperCase();
  void upper;
});
// @ts-expect-error `text` is a string, not a number
client.on('notice', ({ text }: { text: number }) => void text);
const rooms: Promise<string[]> = client.join(['lobby']);
void rooms;
const isError: boolean = new Error('x') instanceof RoomcastClientError;
void isError;
