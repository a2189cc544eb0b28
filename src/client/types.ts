// Public types of the browser/Bun/Node client. Nothing here may depend on Bun or Node.

import type { RoomcastClientError } from './errors.ts';

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

export type TClientErrorCode =
  /** The server sent an `error` event. */
  | 'SERVER_ERROR'
  /** A frame that is not JSON, not an object or has no string `event`. */
  | 'BAD_FRAME'
  /** An `encrypted` frame that could not be decrypted or decoded. */
  | 'DECRYPT_FAILED'
  /** The key exchange after `connected` failed, or the server did not take part in it. */
  | 'HANDSHAKE_FAILED'
  /** The outbound queue was full; the message was dropped. */
  | 'QUEUE_OVERFLOW'
  /** `close()` discarded messages that were still queued. */
  | 'QUEUE_DISCARDED'
  /** The `auth` function threw or returned something that is not an object. */
  | 'AUTH_UNAVAILABLE'
  /** The server refused the connection (4003 / 4004) and no reconnect follows. */
  | 'REFUSED'
  /** `reconnect.maxAttempts` consecutive attempts failed. */
  | 'RECONNECT_EXHAUSTED'
  /** A join/leave got no acknowledgement within `requestTimeout`. */
  | 'REQUEST_TIMEOUT'
  /** Rooms the server granted before were not granted again after a reconnect. */
  | 'REJOIN_DENIED'
  /** The client was closed while the operation was pending. */
  | 'CLOSED'
  /** An application listener threw. */
  | 'LISTENER_FAILED';

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
  /** Negotiate ECDH + AES-GCM for server → client traffic. Default false. */
  encryption?: boolean | { hkdfInfo?: string };
  /** Connect in the constructor. Default true; otherwise call `connect()`. */
  autoConnect?: boolean;
  /** WebSocket implementation; default the global one (browsers, Bun, Node >= 22). */
  WebSocket?: TWebSocketConstructor;
  protocols?: string | string[];
  /** Receives every error the client reports (also delivered to `on('error')`). */
  onError?: (error: RoomcastClientError) => void;
  onStateChange?: (change: IStateChange) => void;
}

/** Events the client raises itself; they share the reserved names of the protocol. */
export interface IClientSystemEvents {
  connected: IConnectedInfo;
  disconnect: IDisconnectInfo;
  error: RoomcastClientError;
}

/** App events (reserved names removed) plus the client's own events. */
export type TListenMap<In extends object> = {
  [K in Exclude<keyof In & string, TSystemEventName>]: In[K];
} & IClientSystemEvents;

export type TOutgoingName<Out extends object> = Exclude<keyof Out & string, TSystemEventName>;

/** An event whose payload may be undefined can be emitted without data. */
export type TEmitArgs<T> = undefined extends T ? [data?: T] : [data: T];
