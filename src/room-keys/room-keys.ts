import { createCipheriv, randomBytes } from 'node:crypto';
import { clientFields } from '../common/log.ts';
import type { ILogger, IWebSocketClient } from '../common/types.ts';
import { withPosition } from '../history/frames.ts';
import { encodeFrame } from '../utils/json.ts';
import { type IRoomKeysOptions, RoomKeyEvents } from './types.ts';

// Sealed rooms: the server keeps one AES-256-GCM key per room and generation, gives it to each
// encrypted member through its own session (one per-client encryption per member), encrypts each
// room message once under it and hands the one frame to Bun's native publish. Generations are
// per instance: a member only ever holds keys of the instance it is connected to (see
// docs/security.md), so no key is shared through Redis.

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes 0-3 of a sealed frame's IV; bytes 4-11 count the generation's frames (big-endian). */
const IV_PREFIX = 0x726b0001;
/** At most this long (ms) between a leave and its new generation's keys, when no message comes first. */
const RENEW_DELAY = 20;
/** Room names whose `rooms(room)` answer is kept; past it the cache starts over. */
const MAX_CACHED_ANSWERS = 10_000;
/** Bun topic of a sealed room: room names cannot start with `ws:`, so no plain room shares it. */
export const sealedTopic = (room: string): string => `ws:sealed:${room}`;

type Client<M extends object> = IWebSocketClient<M>;

/** What LocalDelivery asks of sealed rooms: whether a room is sealed, and its delivery. */
export interface IRoomSealer {
  seals(room: string): boolean;
  /**
   * For a sealed room: seals the frame (`frame` when the caller built it already, else `{ event,
   * data }`) once, publishes it to the room's sealed topic (minus `exclude`) and answers true.
   * False for any other room (delivered as usual).
   */
  deliver(
    room: string,
    event: string,
    data: unknown,
    exclude?: readonly string[],
    frame?: string,
    positionTail?: string,
  ): boolean;
}

export interface IRoomKeysHost<M extends object> {
  /** Sends a system frame to one client through its per-client transformer (its session key). */
  send(client: Client<M>, frame: string, event: string, data: unknown): void;
  /** Native fan-out of one frame to a topic, minus `exclude` (LocalDelivery.publishNative). */
  publish(topic: string, frame: string, exclude?: readonly string[]): void;
  logger: ILogger;
  /** Whether `room` is the id of a client connected here (its own room). */
  isClient(room: string): boolean;
}

/** Counts for tests, metrics and the benchmark. */
export interface IRoomKeysStats {
  /** Room messages sealed (one encryption each, whatever the number of members). */
  sealed: number;
  /** Generations started (the first one of a room included). */
  generations: number;
  /** Keys handed to members (one per-client encryption each). */
  keysSent: number;
  /** Sealed rooms with members on this instance. */
  rooms: number;
}

interface IGeneration {
  /** Unique across instances and restarts: this instance's random tag and a counter. */
  id: string;
  key: Buffer;
  keyB64: string;
  /** Frames sealed so far under this key; the next IV carries `sent + 1`. */
  sent: number;
  /** The `ws:room-key` frame and its data, built on the first member's key. */
  keyData?: { room: string; gen: string; key: string };
  keyFrame?: string;
}

interface IRoomState {
  gen: IGeneration;
  members: Set<Client<object>>;
  /** The period's timer (`rotateInterval`). */
  timer?: ReturnType<typeof setTimeout>;
  /**
   * A member left (or one joined, with `rotateOnJoin`) since `gen` started: nothing more may be
   * sealed under it. The new generation starts before the next message is sealed, or after
   * `RENEW_DELAY` ms, whichever comes first, so a burst of leaves costs one rotation, not one each.
   */
  stale?: ReturnType<typeof setTimeout>;
}

/** Validates `roomKeys` (throws on a misconfiguration) and fills in the defaults. */
export function resolveRoomKeysOptions(prefix: string, value: IRoomKeysOptions): Required<IRoomKeysOptions> {
  if (typeof value !== 'object' || value === null || typeof value.rooms !== 'function') {
    throw new Error(
      `${prefix} roomKeys must be { rooms: (room) => boolean, rotateInterval?, rotateOnJoin? }`,
    );
  }
  const interval = value.rotateInterval ?? 0;
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval < 0 || interval > 2 ** 31 - 1) {
    throw new Error(`${prefix} roomKeys.rotateInterval must be a number of milliseconds >= 0 (0: off)`);
  }
  if (value.rotateOnJoin !== undefined && typeof value.rotateOnJoin !== 'boolean') {
    throw new Error(`${prefix} roomKeys.rotateOnJoin must be a boolean`);
  }
  return { rooms: value.rooms, rotateInterval: interval, rotateOnJoin: value.rotateOnJoin === true };
}

/**
 * The keys of this instance's sealed rooms. Fed by the registry's membership changes (`onMembership`);
 * asked by LocalDelivery for every room message (`seals`, `deliver`).
 */
export class RoomKeys<M extends object = object> implements IRoomSealer {
  readonly stats: IRoomKeysStats = { sealed: 0, generations: 0, keysSent: 0, rooms: 0 };
  private readonly options: Required<IRoomKeysOptions>;
  private readonly answers = new Map<string, boolean>();
  private readonly states = new Map<string, IRoomState>();
  /** Random per instance, so generation ids of two instances (or two runs) never meet. */
  private readonly tag = randomBytes(6).toString('base64url');
  private counter = 0;
  private readonly iv = Buffer.alloc(IV_BYTES);

  constructor(
    options: IRoomKeysOptions,
    private readonly host: IRoomKeysHost<M>,
    prefix = '[WebSocketServerHelper]',
  ) {
    this.options = resolveRoomKeysOptions(prefix, options);
  }

  seals(room: string): boolean {
    // The helper's own topics (presence events, broadcast) and a client's id room (direct sends
    // travel through it) are never sealed, whatever `rooms` answers.
    if (room.startsWith('ws:') || this.host.isClient(room)) return false;
    let answer = this.answers.get(room);
    if (answer === undefined) {
      try {
        answer = this.options.rooms(room) === true;
      } catch (error) {
        // Sealed is the safe answer for a room we cannot classify: nothing goes out in clear.
        this.host.logger.error(`roomKeys.rooms threw for room ${room}; treated as sealed`, { error });
        answer = true;
      }
      if (this.answers.size >= MAX_CACHED_ANSWERS) this.answers.clear();
      this.answers.set(room, answer);
    }
    return answer;
  }

  /** The id of a room's current generation here, or undefined when it has no member here. */
  generation(room: string): string | undefined {
    const state = this.states.get(room);
    if (state?.stale) this.renew(room, state); // the one the next message would be sealed under
    return state?.gen.id;
  }

  /** The registry's membership hook: keys follow the members of sealed rooms. */
  readonly onMembership = (client: Client<M>, room: string, change: string): void => {
    if (!this.seals(room)) return;
    const member = client as Client<object>;
    if (change === 'join') this.joined(member, room);
    else this.left(member, room, change !== 'suspend');
  };

  deliver(
    room: string,
    event: string,
    data: unknown,
    exclude?: readonly string[],
    frame?: string,
    positionTail?: string,
  ): boolean {
    const state = this.states.get(room);
    if (!state) return this.seals(room); // sealed but no encrypted member here: nobody to deliver to
    if (state.stale) this.renew(room, state);
    // A positioned frame carries its position inside too (the same values as the tail outside).
    const sealed = this.seal(room, state.gen, frame ?? encodeFrame(event, data));
    this.host.publish(sealedTopic(room), positionTail ? withPosition(sealed, positionTail) : sealed, exclude);
    return true;
  }

  /** Starts a new generation of `room` now (no-op without members here). True when one was started. */
  rotate(room: string): boolean {
    const state = this.states.get(room);
    if (!state) return false;
    this.renew(room, state);
    return true;
  }

  /** Stops the rotation timers (server stop). */
  stop(): void {
    for (const state of this.states.values()) {
      clearTimeout(state.timer);
      clearTimeout(state.stale);
    }
    this.states.clear();
    this.stats.rooms = 0;
  }

  private joined(client: Client<object>, room: string): void {
    // A client without a session key cannot be given the room key: it gets nothing of the room
    // (room requests refuse it; see `admits`).
    if (!client.encrypted) return;
    let state = this.states.get(room);
    if (!state) {
      state = { gen: this.newGeneration(), members: new Set() };
      this.states.set(room, state);
      this.stats.rooms++;
      this.schedule(room, state);
    }
    state.members.add(client);
    this.subscribe(client, room, true);
    // A stale generation's key goes to nobody new; the joiner gets the next one with the others.
    if (state.stale || (this.options.rotateOnJoin && state.members.size > 1)) this.outdate(room, state);
    else this.sendKey(client, room, state.gen);
  }

  private left(client: Client<object>, room: string, rotate: boolean): void {
    const state = this.states.get(room);
    if (!state?.members.delete(client)) return;
    this.subscribe(client, room, false);
    if (state.members.size === 0) {
      clearTimeout(state.timer);
      clearTimeout(state.stale);
      this.states.delete(room);
      this.stats.rooms--;
      return;
    }
    // Gone for good (leave, removal, disconnect): what comes next is sealed under a key it never had.
    // A suspended member (gap repair) re-joins shortly; a removal before that rotates then.
    if (rotate) this.outdate(room, state);
  }

  /** Marks the generation as no longer usable; `renew` follows (see `IRoomState.stale`). */
  private outdate(room: string, state: IRoomState): void {
    if (state.stale) return;
    state.stale = setTimeout(() => {
      if (this.states.get(room) === state && state.stale) this.renew(room, state);
    }, RENEW_DELAY);
    (state.stale as { unref?: () => void }).unref?.();
  }

  /** Whether a client may join `room`: a sealed room needs per-client encryption. */
  readonly admits = (client: Client<M>, room: string): boolean => client.encrypted || !this.seals(room);

  private renew(room: string, state: IRoomState): void {
    clearTimeout(state.stale);
    state.stale = undefined;
    state.gen = this.newGeneration();
    for (const member of state.members) this.sendKey(member, room, state.gen);
    clearTimeout(state.timer);
    this.schedule(room, state);
  }

  private schedule(room: string, state: IRoomState): void {
    const every = this.options.rotateInterval;
    if (every <= 0) return;
    state.timer = setTimeout(() => {
      if (this.states.get(room) === state) this.renew(room, state);
    }, every);
    (state.timer as { unref?: () => void }).unref?.();
  }

  private newGeneration(): IGeneration {
    this.stats.generations++;
    const key = randomBytes(KEY_BYTES);
    return {
      id: `${this.tag}.${(++this.counter).toString(36)}`,
      key,
      keyB64: key.toString('base64'),
      sent: 0,
    };
  }

  private sendKey(client: Client<object>, room: string, gen: IGeneration): void {
    this.stats.keysSent++;
    // Built once per generation: every member's transformer gets the same frame string.
    gen.keyData ??= { room, gen: gen.id, key: gen.keyB64 };
    gen.keyFrame ??= encodeFrame(RoomKeyEvents.KEY, gen.keyData);
    this.host.send(client as Client<M>, gen.keyFrame, RoomKeyEvents.KEY, gen.keyData);
  }

  private subscribe(client: Client<object>, room: string, on: boolean): void {
    try {
      if (on) client.socket.subscribe(sealedTopic(room));
      else client.socket.unsubscribe(sealedTopic(room));
    } catch (error) {
      // A socket closing meanwhile: Bun drops its topics itself.
      this.host.logger.debug(
        `sealed topic (un)subscribe failed for ${client.id}`,
        clientFields(client, { error }),
      );
    }
  }

  /** `{"event":"ws:sealed","data":{"room","gen","iv","ct"}}`: AES-256-GCM, the room name as additional data. */
  private seal(room: string, gen: IGeneration, plaintext: string): string {
    this.stats.sealed++;
    const counter = ++gen.sent;
    const iv = this.iv;
    iv.writeUInt32BE(IV_PREFIX, 0);
    iv.writeUInt32BE(Math.floor(counter / 0x1_0000_0000), 4);
    iv.writeUInt32BE(counter >>> 0, 8);
    const cipher = createCipheriv('aes-256-gcm', gen.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(room, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    const data = { room, gen: gen.id, iv: iv.toString('base64'), ct: ct.toString('base64') };
    return `{"event":"${RoomKeyEvents.SEALED}","data":${JSON.stringify(data)}}`;
  }
}

interface IAttachOptions<M extends object> {
  registry: {
    onMembership?: (client: Client<M>, room: string, change: 'join' | 'leave' | 'suspend' | 'remove') => void;
    get(clientId: string): Client<M> | undefined;
  };
  delivery: {
    sealer?: IRoomSealer;
    publishNative(topic: string, frame: string, exclude?: readonly string[]): void;
    /** One frame to one client, through its transformer once encrypted (LocalDelivery.toSocket). */
    toSocket(client: Client<M>, frame: string, event: string, data: unknown): void;
  };
  logger: ILogger;
  /** The per-client transformer the keys travel through; sealed rooms refuse to start without it. */
  transformer?: unknown;
}

/** Wires sealed rooms into a server: the membership hook (after presence's), the delivery and the keys' path. */
export function attachRoomKeys<M extends object>(
  options: IRoomKeysOptions,
  on: IAttachOptions<M>,
): RoomKeys<M> {
  const prefix = '[WebSocketServerHelper]';
  if (typeof on.transformer !== 'function') {
    throw new Error(
      `${prefix} roomKeys needs outboundTransformer (per-client encryption, e.g. createEcdhEncryption()): room keys travel under each member's session key`,
    );
  }
  const { delivery, registry } = on;
  const keys = new RoomKeys<M>(
    options,
    {
      send: (client, frame, event, data) => delivery.toSocket(client, frame, event, data),
      publish: (topic, frame, exclude) => delivery.publishNative(topic, frame, exclude),
      logger: on.logger,
      isClient: (room) => registry.get(room) !== undefined,
    },
    prefix,
  );
  const before = registry.onMembership;
  registry.onMembership = before
    ? (client, room, change) => {
        before(client, room, change);
        keys.onMembership(client, room, change);
      }
    : keys.onMembership;
  delivery.sealer = keys;
  return keys;
}
