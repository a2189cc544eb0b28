// Public types of the browser/Bun/Node client. Nothing here may depend on Bun or Node.

import type { RoomcastClientError } from './errors.ts';
import type { TRoomKeysHook } from './room-keys.ts';

export type { TClientErrorCode, TServerErrorCode } from './errors.ts';

/** Event name → payload. Interfaces work too (`interface ChatEvents { chat: { text: string } }`). */
export type TEventMap = Record<string, unknown>;

/** Names the protocol reserves; applications can neither emit nor receive app events with them. */
export type TSystemEventName =
  | 'authenticate'
  | 'connected'
  | 'disconnect'
  | 'join'
  | 'leave'
  | 'error'
  | 'heartbeat'
  | 'encrypted';

export type TConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

/** What the server sent in `connected`, plus whether incoming traffic is being decrypted. */
export interface IConnectedInfo {
  id: string;
  userId?: string;
  /** Server time of the authentication, ISO 8601. */
  time: string;
  /** When the credentials expire (epoch ms), if `authenticateFn` gave an expiry. */
  expiresAt?: number;
  serverPublicKey?: string;
  salt?: string;
  /** True when an AES key was derived and `encrypted` frames are decrypted. */
  encrypted: boolean;
}

export interface ICloseInfo {
  code: number;
  reason: string;
}

export interface IDisconnectInfo extends ICloseInfo {
  willReconnect: boolean;
}

export interface IStateChange {
  state: TConnectionState;
  previous: TConnectionState;
  /** The close that caused the change, when there was one. */
  close?: ICloseInfo;
  /** Reconnect attempt number (1-based) and the wait before it, for `reconnecting`. */
  attempt?: number;
  delay?: number;
}

// The handler properties use method syntax so the DOM `WebSocket`, `ws` and test stubs all fit.
type THandler<E> = { handle(event: E): void }['handle'];

/** The part of the WHATWG WebSocket the client uses. */
export interface IWebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: THandler<unknown> | null;
  onmessage: THandler<{ data: unknown }> | null;
  onclose: THandler<{ code: number; reason: string }> | null;
  onerror: THandler<unknown> | null;
}

export type TWebSocketConstructor = new (url: string, protocols?: string | string[]) => IWebSocketLike;

export interface IReconnectOptions {
  /** Wait before the first retry, in ms. Default 500. */
  initialDelay?: number;
  /** Upper bound of one wait, in ms. Default 30 000. */
  maxDelay?: number;
  /** Growth per failed attempt. Default 2. */
  factor?: number;
  /** Fraction (0..1) of each wait that is randomized away. Default 0.5. */
  jitter?: number;
  /** Consecutive failed attempts before giving up. Default Infinity. */
  maxAttempts?: number;
}

export type TAuthSource<Auth extends object> = Auth | (() => Auth | Promise<Auth>);

/** Where a room's stream stands: `offset` of its last publication (0 when none) in history `epoch`. */
export interface IStreamPosition {
  offset: number;
  epoch: string;
}

/** Position of a publication of a history room; the second argument of an event listener. */
export interface IPublicationInfo extends IStreamPosition {
  room: string;
}

/** Outcome of a room's recovery, after a reconnect, a repaired gap, or a history lost on the server. */
export interface IRoomRecovery {
  room: string;
  /**
   * True: every publication missed since the last one received was delivered, in order, once.
   * False: missed publications are gone (history lost or past its retained window); the room
   * continues live from `position` and the application should reload what it shows of it.
   */
  recovered: boolean;
  /** Publications delivered by this recovery (0 when nothing was missed or `recovered` is false). */
  recoveredCount: number;
  /** The room's position once the recovery is settled. */
  position: IStreamPosition;
}

/** What `history()` asks for; the server clamps `limit` to its maximum. */
export interface IHistoryOptions {
  /** Only publications after this position (same epoch, or the request fails with UNRECOVERABLE_POSITION). */
  since?: IStreamPosition;
  /** Most publications to return. */
  limit?: number;
  /** Newest first. */
  reverse?: boolean;
}

export interface IHistoryPublication {
  offset: number;
  event: string;
  data: unknown;
}

/** Retained publications plus the room's current position. */
export interface IHistoryResult extends IStreamPosition {
  publications: IHistoryPublication[];
}

/** Facts handed to a `url` function before each connection attempt. */
export interface IUrlContext {
  /** Sockets this client opened before this one (0 for the very first). */
  attempt: number;
  /** URL of the previous attempt, if any. */
  previous?: string;
}

export interface IEncryptionOptions {
  /** HKDF info; the server must use the same. Default the ECDH default. */
  hkdfInfo?: string;
  /**
   * The server's long-term public key (base64 raw P-256, `generateEncryptionKey().publicKey`) to pin:
   * the credentials from `auth` are sealed to it, a `connected` naming another key ends the attempt
   * (`HANDSHAKE_FAILED`), and the server must number its frames (`sequenced`). Protects against an
   * active man in the middle; see docs/security.md.
   */
  serverPublicKey?: string;
}

/**
 * One server URL; a list, tried in turn (the first for the first connection, the next one on
 * every later attempt, wrapping around); or a function that returns the URL of each attempt.
 */
export type TUrlSource = string | URL | readonly (string | URL)[] | ((context: IUrlContext) => string | URL);

export interface IRoomcastClientOptions<Auth extends object = TEventMap> {
  /** Sent as the `authenticate` data. A function is called before every (re)connect. */
  auth?: TAuthSource<Auth>;
  /** Ms between `heartbeat` frames while connected; 0 turns them off. Default 30 000. */
  heartbeatInterval?: number;
  /** Backoff settings, or `false` to never reconnect. Default `true`. */
  reconnect?: boolean | IReconnectOptions;
  /** Reconnect even after 4003 (auth failed) / 4004 (encryption refused). Default false. */
  reconnectOnRefusal?: boolean;
  /** Messages kept while not connected; 0 drops (and reports) every offline message. Default 100. */
  maxQueueSize?: number;
  /** Ms to wait for the server's answer to `join` / `leave`. Default 10 000. */
  requestTimeout?: number;
  /** Ms from opening a socket to `connected` before the attempt is abandoned. Default 20 000. */
  connectTimeout?: number;
  /** Negotiate ECDH + AES-GCM for server → client traffic. Default false. See docs/security.md. */
  encryption?: boolean | IEncryptionOptions;
  /** Connect in the constructor. Default true; otherwise call `connect()`. */
  autoConnect?: boolean;
  /** WebSocket implementation; default the global one (browsers, Bun, Node >= 22). */
  WebSocket?: TWebSocketConstructor;
  protocols?: string | string[];
  /** Receives every error the client reports (also delivered to `on('error')`). */
  onError?: (error: RoomcastClientError) => void;
  onStateChange?: (change: IStateChange) => void;
  /** Receives the outcome of every room recovery (see `IRoomRecovery`). */
  onRecovery?: (recovery: IRoomRecovery) => void;
  /**
   * Sealed rooms: `roomKeys()` from `roomcast/client/room-keys` (a separate module, so clients that
   * do not use it do not carry it). Needs `encryption`. See docs/client.md.
   */
  roomKeys?: TRoomKeysHook;
}

/** One connection in a presence room. */
export interface IPresenceMember {
  clientId: string;
  userId?: string;
  /** What the server's `presenceInfoFn` exposes of that client. */
  info?: unknown;
}

/** A presence room's members on every instance, with their counts. */
export interface IPresenceResult {
  room: string;
  members: IPresenceMember[];
  /** Connections. */
  clients: number;
  /** Distinct user ids. */
  users: number;
}

/** `ws:presence:join` / `ws:presence:leave`: who entered or left a presence room you subscribed to. */
export interface IPresenceEvent extends IPresenceMember {
  room: string;
}

/** Events the client raises itself; they share the reserved names of the protocol. */
export interface IClientSystemEvents {
  connected: IConnectedInfo;
  disconnect: IDisconnectInfo;
  error: RoomcastClientError;
  /** A member entered a presence room this client subscribed to (`subscribePresence`). */
  'ws:presence:join': IPresenceEvent;
  /** A member left it (also when its server instance died, after the presence TTL). */
  'ws:presence:leave': IPresenceEvent;
}

/** App events (reserved names removed) plus the client's own events. */
export type TListenMap<In extends object> = {
  [K in Exclude<keyof In & string, TSystemEventName>]: In[K];
} & IClientSystemEvents;

export type TOutgoingName<Out extends object> = Exclude<keyof Out & string, TSystemEventName>;

/** An event whose payload may be undefined can be emitted without data. */
export type TEmitArgs<T> = undefined extends T ? [data?: T] : [data: T];
