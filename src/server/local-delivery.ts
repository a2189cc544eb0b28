import { WebSocketClientStates, WebSocketDefaults, WebSocketEvents } from '../common/constants.ts';
import { clientFields } from '../common/log.ts';
import type {
  AnyRecord,
  IBunServer,
  ILogger,
  IWebSocketClient,
  TWebSocketOutboundTransformer,
} from '../common/types.ts';
import { withPosition } from '../history/frames.ts';
import { ServerCounters } from '../metrics/counters.ts';
import type { IRoomSealer } from '../room-keys/room-keys.ts';
import { encodeFrame } from '../utils/json.ts';
import type { ClientRegistry } from './client-registry.ts';
import { isPromiseLike, TransformLines, type TTransformedValue } from './transform-lines.ts';

type Client<M extends object> = IWebSocketClient<M>;
// biome-ignore lint/suspicious/noExplicitAny: the transformer chooses its own data type
type TTransformer<M extends object> = TWebSocketOutboundTransformer<any, M>;
type TTransformed = ReturnType<TTransformer<AnyRecord>>;

/**
 * A plain system frame (`connected`, `join`, `leave`, `error`) to one client,
 * never through the outbound transformer; `id` echoes the request it answers.
 */
export type TSystemReply<M extends object> = (
  client: Client<M>,
  event: string,
  data: unknown,
  id?: string,
) => void;

/**
 * Answers a refused frame or request with an `error` frame `{ message, code, closeCode? }`
 * (`id` echoes the request; `closeCode` when the server closes right after).
 */
export function replyError<M extends object>(
  reply: TSystemReply<M>,
  client: Client<M>,
  code: string,
  message: string,
  id?: string,
  closeCode?: number,
): void {
  reply(
    client,
    WebSocketEvents.ERROR,
    closeCode === undefined ? { message, code } : { message, code, closeCode },
    id,
  );
}

export interface ILocalDeliveryOptions<M extends object> {
  server: IBunServer;
  registry: ClientRegistry<M>;
  // biome-ignore lint/suspicious/noExplicitAny: the transformer chooses its own data type
  transformer?: TWebSocketOutboundTransformer<any, M>;
  batchLimit: number;
  publishToSelf: boolean;
  logger: ILogger;
  /** Where deliveries are counted; a private set when omitted. */
  counters?: ServerCounters;
}

/**
 * Delivers to clients of this instance. A message is serialized once; plain
 * clients are reached through Bun's native topic fan-out, and only encrypted
 * clients are visited one by one (through the outbound transformer).
 */
export class LocalDelivery<M extends object = AnyRecord> {
  private server: IBunServer;
  private readonly registry: ClientRegistry<M>;
  // biome-ignore lint/suspicious/noExplicitAny: see options
  private readonly transformer?: TWebSocketOutboundTransformer<any, M>;
  private readonly batchLimit: number;
  private readonly publishToSelf: boolean;
  private readonly logger: ILogger;
  private readonly counters: ServerCounters;
  /** Per-client lines of messages waiting for an asynchronous transformer answer, in send order. */
  private lines?: TransformLines<M>;
  /**
   * Synchronous transformer answers of the current task, per client, written
   * together when it ends: one corked write per client instead of one per
   * message (what Bun's native publish does for plain clients).
   */
  private readonly answers = new Map<Client<M>, string[]>();
  private flushQueued = false;
  /** Sealed rooms (room-keys/): their messages are encrypted once and published natively; absent when off. */
  sealer?: IRoomSealer;

  /** Replaces the server (the helper learns it late when its `server` option was left out). */
  bindServer(server: IBunServer): void {
    this.server = server;
  }

  constructor(opts: ILocalDeliveryOptions<M>) {
    this.server = opts.server;
    this.registry = opts.registry;
    this.transformer = opts.transformer;
    this.batchLimit = opts.batchLimit;
    this.publishToSelf = opts.publishToSelf;
    this.logger = opts.logger;
    this.counters = opts.counters ?? new ServerCounters();
  }

  // Each method takes an optional pre-built `frame` so a caller that already
  // serialized the payload (send(): local + Redis) does not do it twice.

  toClient(clientId: string, event: string, data: unknown, frame?: string): void {
    const client = this.registry.get(clientId);
    if (!client || !this.admitted(client)) return;
    this.deliverOne(client, frame ?? encodeFrame(event, data), event, data);
  }

  /**
   * A system answer (reply, history page, presence answer, join/leave reply, error) to one client:
   * through the transformer once the client is encrypted, like every other frame after its
   * handshake. `id` (the request it answers) is repeated outside the ciphertext, so a transformer
   * that encrypts only `{ event, data }` still lets the client match the answer; our own
   * encryption seals the whole frame, `id` included.
   */
  toSocket(client: Client<M>, frame: string, event: string, data: unknown, id?: string): void {
    if (!client.encrypted) {
      this.write(client, frame);
      return;
    }
    const tail = id === undefined ? undefined : `,"id":${JSON.stringify(id)}}`;
    this.deliverEncrypted([client], frame, event, data, tail);
  }

  toUser(userId: string, event: string, data: unknown, exclude?: readonly string[], frame?: string): void {
    // Encoded on the first recipient only, when not given.
    for (const client of this.registry.userClients(userId)) {
      if (exclude?.includes(client.id)) continue;
      frame ??= encodeFrame(event, data);
      this.deliverOne(client, frame, event, data);
    }
  }

  /**
   * `positionTail` (history rooms only, see history/frames.ts) is already in `frame`; encrypted
   * members get it appended to their transformed frame, outside the ciphertext.
   */
  toRoom(
    room: string,
    event: string,
    data: unknown,
    exclude?: readonly string[],
    frame?: string,
    positionTail?: string,
  ): void {
    if (this.sealer?.deliver(room, event, data, exclude, frame, positionTail)) return;
    frame ??= encodeFrame(event, data);
    // A client's id room reaches its socket through the topic it subscribed at open: keep a
    // client that is not admitted yet out of it (one lookup per message, not per recipient).
    const owner = this.registry.get(room);
    if (owner !== undefined && !this.admitted(owner)) exclude = exclude ? [...exclude, room] : [room];
    this.publishNative(room, frame, exclude);
    if (this.registry.encrypted.size > 0) {
      this.deliverEncrypted(this.encryptedMembers(room, exclude), frame, event, data, positionTail);
    }
  }

  /**
   * Nothing but the protocol's own answers reaches a socket before admission (authenticated and,
   * under `requireEncryption`, its handshake done: both happen at once). What is sent to it
   * meanwhile is dropped and counted (`messages_dropped_total{reason="not_admitted"}`).
   */
  private admitted(client: Client<M>): boolean {
    if (client.state === WebSocketClientStates.AUTHENTICATED) return true;
    this.counters.droppedUnadmitted++;
    return false;
  }

  /** One positioned publication to one client (a recovering join), through the transformer when encrypted. */
  toRecovering(
    client: Client<M>,
    frame: string,
    event: string,
    data: () => unknown,
    positionTail: string,
  ): void {
    if (client.encrypted) this.deliverEncrypted([client], frame, event, data(), positionTail);
    else this.write(client, frame);
  }

  /** Every authenticated client of this instance. */
  toAll(event: string, data: unknown, exclude?: readonly string[], frame?: string): void {
    frame ??= encodeFrame(event, data);
    this.publishNative(WebSocketDefaults.BROADCAST_TOPIC, frame, exclude);
    if (this.registry.encrypted.size > 0) {
      const targets: Client<M>[] = [];
      for (const client of this.registry.encrypted) {
        if (client.state === WebSocketClientStates.AUTHENTICATED && !exclude?.includes(client.id)) {
          targets.push(client);
        }
      }
      this.deliverEncrypted(targets, frame, event, data);
    }
  }

  /**
   * Sends an already-encoded frame straight to the socket, bypassing the transformer.
   * Bun answers -1 (queued under backpressure) or 0 (dropped: the buffer is past
   * `backpressureLimit`); either way the client is backpressured until `drain`.
   */
  write(client: Client<M>, frame: string): void {
    this.counters.socketWrites++;
    try {
      const sent = client.socket.send(frame);
      if (sent <= 0) {
        client.backpressured = true;
        if (sent === 0) this.counters.droppedBackpressure++;
      }
    } catch (error) {
      // One broken socket must not cost the other recipients their copy, nor the caller an exception.
      this.logger.error(
        `socket send failed for client ${client.id}; message dropped for it`,
        clientFields(client, { error }),
      );
    }
  }

  /**
   * Native fan-out to a topic's subscribers minus `exclude`. One excluded client
   * publishes through its own socket (Bun skips the publisher); several are
   * unsubscribed for the duration of the synchronous publish (and re-subscribed
   * even if it throws; the error still reaches the caller). Either way the cost
   * is in the number excluded, not in the size of the room.
   */
  publishNative(topic: string, frame: string, exclude?: readonly string[]): void {
    this.counters.nativePublishes++;
    if (!exclude || exclude.length === 0) {
      this.server.publish(topic, frame);
      return;
    }
    const excluded: Client<M>[] = [];
    for (const id of exclude) {
      const client = this.registry.get(id);
      if (client?.socket.isSubscribed(topic)) excluded.push(client);
    }
    if (excluded.length === 0) {
      this.server.publish(topic, frame);
      return;
    }
    const only = excluded.length === 1 ? excluded[0]! : undefined;
    if (only && !this.publishToSelf && only.socket.publish && only.socket.readyState === 1) {
      only.socket.publish(topic, frame);
      return;
    }
    for (const client of excluded) client.socket.unsubscribe(topic);
    try {
      this.server.publish(topic, frame);
    } finally {
      // Even when the publish throws, nobody may stay unsubscribed from the room for good.
      for (const client of excluded) this.resubscribe(client, topic);
    }
  }

  private resubscribe(client: Client<M>, topic: string): void {
    try {
      client.socket.subscribe(topic);
    } catch (error) {
      this.logger.error(
        `could not re-subscribe client ${client.id} to ${topic}`,
        clientFields(client, { topic, error }),
      );
    }
  }

  private encryptedMembers(room: string, exclude?: readonly string[]): Client<M>[] {
    const targets: Client<M>[] = [];
    // Walk whichever group is smaller.
    const [walk, check] =
      this.registry.roomSize(room) < this.registry.encrypted.size
        ? [this.registry.roomMembers(room), (c: Client<M>) => c.encrypted]
        : [this.registry.encrypted, (c: Client<M>) => this.registry.isMember(c, room)];
    for (const client of walk) {
      if (
        check(client) &&
        !exclude?.includes(client.id) &&
        client.state === WebSocketClientStates.AUTHENTICATED
      )
        targets.push(client);
    }
    return targets;
  }

  private deliverOne(client: Client<M>, frame: string, event: string, data: unknown): void {
    if (client.encrypted) this.deliverEncrypted([client], frame, event, data);
    else this.write(client, frame);
  }

  /**
   * Encrypted clients, one by one through the transformer. An answer given
   * synchronously (a value, not a promise) costs no promise per client and
   * message; it is written when the task ends (`flushAnswers`). From the first
   * promise on, and from the first client that still has sends pending, the rest
   * go to the asynchronous lines (`TransformLines`): each behind the client's
   * earlier sends, at most `batchLimit` of this fan-out at once, so every client
   * gets its messages in order whichever way the transformer answered.
   */
  private deliverEncrypted(
    targets: Client<M>[],
    frame: string,
    event: string,
    data: unknown,
    tail?: string,
  ): void {
    if (targets.length === 0) return;
    this.counters.encryptedDeliveries += targets.length;
    const transformer = this.transformer;
    if (!transformer) {
      // Encryption enabled without a transformer: nothing to transform, deliver as is.
      for (const client of targets) this.write(client, frame);
      return;
    }
    const lines = this.lines;
    for (let i = 0; i < targets.length; i++) {
      const client = targets[i]!;
      if (lines?.has(client)) {
        lines.enqueue(targets, i, frame, event, data, tail);
        return;
      }
      let result: TTransformed;
      try {
        result = transformer({ client, event, data, frame });
      } catch (error) {
        this.transformFailed(client, error);
        continue;
      }
      if (isPromiseLike(result)) {
        // Asynchronous: this call is the first of the fan-out's window.
        this.asyncLines(transformer).enqueue(targets, i + 1, frame, event, data, tail, result);
        return;
      }
      this.writeTransformed(client, result, frame, tail);
    }
  }

  /** The asynchronous lines, made on the first asynchronous answer (a synchronous transformer never needs them). */
  private asyncLines(transformer: TTransformer<M>): TransformLines<M> {
    this.lines ??= new TransformLines<M>({
      transformer,
      limit: this.batchLimit,
      encode: (client, transformed, frame, tail) => {
        try {
          return transformedFrame(transformed, frame, tail);
        } catch (error) {
          this.transformFailed(client, error);
          return undefined;
        }
      },
      write: (client, frames) => this.writeFrames(client, frames),
      failed: (client, error) => this.transformFailed(client, error),
    });
    return this.lines;
  }

  /**
   * A synchronous answer, written with the others of this task when it ends (`flushAnswers`); a
   * later send to the same client is written after it (an asynchronous one at the earliest on the
   * next turn). Never throws: data the transformer returned that cannot be serialized is logged
   * like a failure.
   */
  private writeTransformed(
    client: Client<M>,
    transformed: TTransformedValue,
    frame: string,
    tail?: string,
  ): void {
    if (client.state === WebSocketClientStates.DISCONNECTED) return;
    let out: string;
    try {
      out = transformedFrame(transformed, frame, tail);
    } catch (error) {
      this.transformFailed(client, error);
      return;
    }
    const frames = this.answers.get(client);
    if (frames) frames.push(out);
    else this.answers.set(client, [out]);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushAnswers);
    }
  }

  private readonly flushAnswers = (): void => {
    this.flushQueued = false;
    for (const [client, frames] of this.answers) {
      if (client.state !== WebSocketClientStates.DISCONNECTED) this.writeFrames(client, frames);
    }
    this.answers.clear();
  };

  /** A client's frames in order: one corked write when there are several. Never throws. */
  private writeFrames(client: Client<M>, frames: string[]): void {
    try {
      if (frames.length === 1) this.write(client, frames[0]!);
      else client.socket.cork(() => this.writeAll(client, frames));
    } catch (error) {
      // A socket that throws must not stop the others (nor leave this batch to be written twice).
      this.logger.error(`writing to client ${client.id} failed`, clientFields(client, { error }));
    }
  }

  private writeAll(client: Client<M>, frames: string[]): void {
    for (const frame of frames) this.write(client, frame);
  }

  private transformFailed(client: Client<M>, error: unknown): void {
    // Never fall back to plaintext for a client that asked for encryption.
    this.counters.droppedTransformer++;
    this.logger.error(
      `outboundTransformer failed for client ${client.id}; message dropped`,
      clientFields(client, { error }),
    );
  }
}

/**
 * The frame a client receives for a transformer's answer: `null`/`undefined` sends the original.
 * A history publication's position `tail` goes on the outer frame, outside any ciphertext.
 */
function transformedFrame(transformed: TTransformedValue, frame: string, tail?: string): string {
  if (!transformed) return frame;
  const encoded = encodeFrame(transformed.event, transformed.data);
  return tail ? withPosition(encoded, tail) : encoded;
}
