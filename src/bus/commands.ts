import { WebSocketCloseCodes } from '../common/constants.ts';
import { isValidRoomName } from '../common/room-names.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';
import { isPlainObject, parseJsonObject } from '../utils/json.ts';
import type { BusGuard } from './guard.ts';

/**
 * Server commands and acknowledgements between instances (and from emitters). Two kinds of
 * channel, both plain SUBSCRIBEs on the bus's subscriber connection:
 * - `ws:command`: every instance listens; a command names its targets (a client or a user),
 *   the instances holding them act, the others ignore it.
 * - `ws:instance:<serverId>`: one per instance, for answers meant only for it (a command's
 *   count, an acknowledgement of a message it sent to a client held elsewhere).
 */
export const COMMAND_CHANNEL = 'ws:command';
export const INSTANCE_CHANNEL_PREFIX = 'ws:instance:';

export function instanceChannel(serverId: string): string {
  return INSTANCE_CHANNEL_PREFIX + serverId;
}

/** True for the channels this module owns (the bus's envelope decoder must not see them). */
export function isCommandChannel(channel: string): boolean {
  return channel === COMMAND_CHANNEL || channel.startsWith(INSTANCE_CHANNEL_PREFIX);
}

/** Whom a command acts on: one connection, or every connection of a user. */
export type TCommandTarget =
  | { clientId: string; userId?: undefined }
  | { userId: string; clientId?: undefined };

/** Most connections one instance describes in its answer to an `inspect` command. */
export const INSPECT_MAX_CONNECTIONS = 100;
/** Most room names listed per described connection (`roomCount` has them all). */
export const INSPECT_MAX_ROOMS = 10;

/** One connection as an instance describes it to `inspect` (no metadata, no payload: who and where). */
export interface IConnectionInfo {
  clientId: string;
  userId?: string;
  /** The instance holding it. */
  serverId: string;
  /** Its first `INSPECT_MAX_ROOMS` rooms (its own id room left out). */
  rooms: string[];
  /** How many rooms it is in (its own id room left out). */
  roomCount: number;
  encrypted: boolean;
  /** ms since epoch. */
  connectedAt: number;
  /** ms since epoch of its last frame. */
  lastActivity: number;
}

export type TCommand =
  | { kind: 'disconnect'; target: TCommandTarget; code: number; reason: string }
  /** Asks the instances holding the target to describe its connections (answered with `connections`). */
  | { kind: 'inspect'; target: TCommandTarget }
  | { kind: 'join' | 'leave'; target: TCommandTarget; rooms: string[] }
  /** A message for one client that asks for its acknowledgement, to be answered to `replyTo`. */
  | { kind: 'deliver'; clientId: string; event: string; data?: unknown; ackId: string; timeout: number }
  /**
   * A message for many (a room, a user's connections, everyone when `to` is empty) that asks each
   * recipient's answer: every instance reports whom it delivered to, then relays each answer.
   */
  | {
      kind: 'deliverMany';
      to: IAckTarget;
      event: string;
      data?: unknown;
      ackId: string;
      timeout: number;
      exclude?: string[];
    };

/** The recipients of an acknowledged send to many: a room, a user, or everyone (`{}`). */
export interface IAckTarget {
  room?: string;
  userId?: string;
}

/** What travels on `ws:command`: the command, who sent it and where (and whether) to answer. */
export interface ICommandMessage {
  from: string;
  command: TCommand;
  /** Set when the sender waits for counts: each instance answers `{ requestId, count }` on its channel. */
  requestId?: string;
}

/** What travels on `ws:instance:<id>`. */
export type TInstanceMessage =
  | { kind: 'count'; requestId: string; count: number }
  /** An instance's answer to `inspect`: its connections of the target (at most `INSPECT_MAX_CONNECTIONS`). */
  | { kind: 'connections'; requestId: string; connections: IConnectionInfo[] }
  /** A single client's acknowledgement; `tooLarge`: its answer was refused as too large. */
  | { kind: 'ack'; ackId: string; data?: unknown; tooLarge?: boolean }
  /** Whom an instance delivered a `deliverMany` to (`single`: the room named a client held here). */
  | { kind: 'delivered'; ackId: string; clients: string[]; notAwaited: number; single?: boolean }
  /** One recipient's answer to a `deliverMany`. */
  | { kind: 'answer'; ackId: string; clientId: string; data?: unknown; tooLarge?: boolean };

export function encodeCommand(message: ICommandMessage): string {
  return JSON.stringify(message);
}

function isTarget(value: unknown): value is TCommandTarget {
  if (!isPlainObject(value)) return false;
  const { clientId, userId } = value;
  const one = (id: unknown) => typeof id === 'string' && id.length > 0;
  return (one(clientId) && userId === undefined) || (one(userId) && clientId === undefined);
}

/** A well-formed command message, or undefined (anything else on the channel is dropped). */
export function decodeCommand(raw: string): ICommandMessage | undefined {
  const parsed = parseJsonObject(raw);
  if (!parsed || typeof parsed.from !== 'string' || !isPlainObject(parsed.command)) return undefined;
  const command = parsed.command;
  const requestId = typeof parsed.requestId === 'string' ? parsed.requestId : undefined;
  const base = { from: parsed.from, ...(requestId ? { requestId } : {}) };
  switch (command.kind) {
    case 'disconnect':
      if (!isTarget(command.target) || typeof command.code !== 'number' || typeof command.reason !== 'string')
        return undefined;
      return {
        ...base,
        command: { kind: 'disconnect', target: command.target, code: command.code, reason: command.reason },
      };
    case 'inspect':
      if (!isTarget(command.target)) return undefined;
      return { ...base, command: { kind: 'inspect', target: command.target } };
    case 'join':
    case 'leave':
      if (!isTarget(command.target) || !Array.isArray(command.rooms)) return undefined;
      if (!command.rooms.every((room) => typeof room === 'string')) return undefined;
      return {
        ...base,
        command: { kind: command.kind, target: command.target, rooms: command.rooms as string[] },
      };
    case 'deliver':
      if (
        typeof command.clientId !== 'string' ||
        typeof command.event !== 'string' ||
        typeof command.ackId !== 'string' ||
        typeof command.timeout !== 'number'
      )
        return undefined;
      return {
        ...base,
        command: {
          kind: 'deliver',
          clientId: command.clientId,
          event: command.event,
          data: command.data,
          ackId: command.ackId,
          timeout: command.timeout,
        },
      };
    case 'deliverMany': {
      const { to, exclude } = command;
      if (
        !isPlainObject(to) ||
        !optionalString(to.room) ||
        !optionalString(to.userId) ||
        (to.room !== undefined && to.userId !== undefined) ||
        typeof command.event !== 'string' ||
        typeof command.ackId !== 'string' ||
        typeof command.timeout !== 'number' ||
        (exclude !== undefined && !isStringArray(exclude))
      )
        return undefined;
      const target: IAckTarget =
        to.room !== undefined
          ? { room: to.room as string }
          : to.userId !== undefined
            ? { userId: to.userId as string }
            : {};
      return {
        ...base,
        command: {
          kind: 'deliverMany',
          to: target,
          event: command.event,
          data: command.data,
          ackId: command.ackId,
          timeout: command.timeout,
          ...(exclude ? { exclude: exclude as string[] } : {}),
        },
      };
    }
    default:
      return undefined;
  }
}

function optionalString(value: unknown): boolean {
  return value === undefined || (typeof value === 'string' && value.length > 0);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

export function decodeInstanceMessage(raw: string): TInstanceMessage | undefined {
  const parsed = parseJsonObject(raw);
  if (!parsed) return undefined;
  if (parsed.kind === 'count' && typeof parsed.requestId === 'string' && Number.isSafeInteger(parsed.count)) {
    return { kind: 'count', requestId: parsed.requestId, count: parsed.count as number };
  }
  if (parsed.kind === 'connections' && typeof parsed.requestId === 'string') {
    const connections = decodeConnections(parsed.connections);
    return connections ? { kind: 'connections', requestId: parsed.requestId, connections } : undefined;
  }
  if (typeof parsed.ackId !== 'string') return undefined;
  const { ackId } = parsed;
  const tooLarge = parsed.tooLarge === true ? { tooLarge: true } : {};
  if (parsed.kind === 'ack') return { kind: 'ack', ackId, data: parsed.data, ...tooLarge };
  if (parsed.kind === 'answer' && typeof parsed.clientId === 'string') {
    return { kind: 'answer', ackId, clientId: parsed.clientId, data: parsed.data, ...tooLarge };
  }
  if (
    parsed.kind === 'delivered' &&
    isStringArray(parsed.clients) &&
    Number.isSafeInteger(parsed.notAwaited) &&
    (parsed.notAwaited as number) >= 0
  ) {
    return {
      kind: 'delivered',
      ackId,
      clients: parsed.clients,
      notAwaited: parsed.notAwaited as number,
      ...(parsed.single === true ? { single: true } : {}),
    };
  }
  return undefined;
}

/**
 * Publishes a command (signed when `guard` has a `busSecret`); resolves to the number of
 * subscribers (instances) Redis handed it to. Rejects, publishing nothing, when it is larger
 * than `maxEnvelopeBytes`.
 */
export async function publishCommand(
  client: TRedisClient,
  message: ICommandMessage,
  guard?: Pick<BusGuard, 'seal' | 'tooLarge' | 'maxEnvelopeBytes'>,
): Promise<number> {
  const json = encodeCommand(message);
  if (guard?.tooLarge(json, 'command')) {
    throw new Error(`command larger than maxEnvelopeBytes (${guard.maxEnvelopeBytes}); not published`);
  }
  return await client.publish(COMMAND_CHANNEL, guard ? guard.seal(json) : json);
}

export interface ICommandListenerOptions {
  serverId: string;
  /** Checks size, signature and depth of what arrives, and counts what it drops. */
  guard: BusGuard;
  onCommand: (message: ICommandMessage) => void;
  onInstanceMessage: (message: TInstanceMessage) => void;
}

/**
 * Subscribes the command and instance channels on the bus's subscriber connection and hands
 * what arrives to the callbacks, again after every reconnect.
 */
export async function listenForCommands(sub: TRedisClient, opts: ICommandListenerOptions): Promise<void> {
  const own = instanceChannel(opts.serverId);
  const { guard } = opts;
  // Never throws: a listener throwing inside ioredis would lose the messages read with it.
  sub.on('message', (channel: string, raw: string) => {
    try {
      if (channel === COMMAND_CHANNEL) {
        const json = guard.open(raw, 'command');
        if (json === undefined) return;
        const message = decodeCommand(json);
        if (message) opts.onCommand(message);
        else guard.drop('malformed', 'not a command');
      } else if (channel === own) {
        const json = guard.open(raw, 'instance message');
        if (json === undefined) return;
        const message = decodeInstanceMessage(json);
        if (message) opts.onInstanceMessage(message);
        else guard.drop('malformed', 'not an instance message');
      }
    } catch (error) {
      guard.drop('malformed', `command failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  });
  await sub.subscribe(COMMAND_CHANNEL, own);
  // In `rooms` mode the subscriber does not re-subscribe by itself after a reconnect (the bus
  // restores its own channels): subscribe these two again on every `ready` (idempotent otherwise).
  sub.on('ready', () => {
    sub.subscribe(COMMAND_CHANNEL, own).catch(() => {});
  });
}

/** Checks a command's target and rooms as the helper and the emitter accept them; throws what is wrong. */
export function validateCommand(
  prefix: string,
  opts: { clientId?: unknown; userId?: unknown; rooms?: unknown },
  withRooms: boolean,
): { target: TCommandTarget; rooms: string[] } {
  const { clientId, userId } = opts ?? {};
  const given = (id: unknown) => typeof id === 'string' && id.length > 0;
  let target: TCommandTarget;
  if (given(clientId) && userId === undefined) target = { clientId: clientId as string };
  else if (given(userId) && clientId === undefined) target = { userId: userId as string };
  else
    throw new Error(`${prefix} a server command needs exactly one of clientId or userId (non-empty strings)`);
  if (!withRooms) return { target, rooms: [] };
  const { rooms } = opts;
  if (!Array.isArray(rooms) || rooms.length === 0 || !rooms.every(isValidRoomName)) {
    throw new Error(
      `${prefix} rooms must be a non-empty array of valid room names (non-empty, at most 256 characters, not starting with "ws:")`,
    );
  }
  return { target, rooms: [...new Set(rooms as string[])] };
}

/**
 * A close code a server may send: 1000, or 3000-4999; throws otherwise. `reconnect: false` gives
 * `WebSocketCloseCodes.NO_RECONNECT` (4008), which the SDK does not reconnect after.
 */
export function validateCloseCode(prefix: string, code: unknown, reconnect?: unknown): number {
  if (reconnect !== undefined && typeof reconnect !== 'boolean') {
    throw new Error(`${prefix} reconnect must be a boolean, got ${String(reconnect)}`);
  }
  if (reconnect === false) {
    // A dedicated code the SDK treats as final; another code would let it reconnect.
    if (code !== undefined && code !== WebSocketCloseCodes.NO_RECONNECT) {
      throw new Error(
        `${prefix} reconnect: false closes with ${WebSocketCloseCodes.NO_RECONNECT}; do not give another code`,
      );
    }
    return WebSocketCloseCodes.NO_RECONNECT;
  }
  if (code === undefined) return 1000;
  if (
    typeof code !== 'number' ||
    !Number.isInteger(code) ||
    (code !== 1000 && (code < 3000 || code > 4999))
  ) {
    throw new Error(`${prefix} close code must be 1000 or 3000-4999, got ${String(code)}`);
  }
  return code;
}

/** The connections of an `inspect` answer, each checked field by field; undefined when malformed or too many. */
function decodeConnections(value: unknown): IConnectionInfo[] | undefined {
  if (!Array.isArray(value) || value.length > INSPECT_MAX_CONNECTIONS) return undefined;
  const out: IConnectionInfo[] = [];
  const time = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  for (const entry of value) {
    if (!isPlainObject(entry)) return undefined;
    const { clientId, userId, serverId, rooms, roomCount, encrypted, connectedAt, lastActivity } = entry;
    if (typeof clientId !== 'string' || typeof serverId !== 'string' || !optionalString(userId))
      return undefined;
    if (!isStringArray(rooms) || rooms.length > INSPECT_MAX_ROOMS || !Number.isSafeInteger(roomCount))
      return undefined;
    if (typeof encrypted !== 'boolean' || !time(connectedAt) || !time(lastActivity)) return undefined;
    out.push({
      clientId,
      ...(userId === undefined ? {} : { userId: userId as string }),
      serverId,
      rooms,
      roomCount: roomCount as number,
      encrypted,
      connectedAt,
      lastActivity,
    });
  }
  return out;
}
