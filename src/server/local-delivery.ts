import { WebSocketClientStates, WebSocketDefaults } from '../common/constants.ts';
import type {
  AnyRecord,
  IBunServer,
  ILogger,
  IWebSocketClient,
  TWebSocketOutboundTransformer,
} from '../common/types.ts';
import { encodeFrame } from '../utils/json.ts';
import { executePromiseWithLimit } from '../utils/promise.ts';
import type { ClientRegistry } from './client-registry.ts';

type Client<M extends object> = IWebSocketClient<M>;

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

export interface ILocalDeliveryOptions<M extends object> {
  server: IBunServer;
  registry: ClientRegistry<M>;
  // biome-ignore lint/suspicious/noExplicitAny: the transformer chooses its own data type
  transformer?: TWebSocketOutboundTransformer<any, M>;
  batchLimit: number;
  publishToSelf: boolean;
  logger: ILogger;
}

/**
 * Delivers to clients of this instance. A message is serialized once; plain
 * clients are reached through Bun's native topic fan-out, and only encrypted
 * clients are visited one by one (through the outbound transformer).
 */
export class LocalDelivery<M extends object = AnyRecord> {
  private readonly server: IBunServer;
  private readonly registry: ClientRegistry<M>;
  // biome-ignore lint/suspicious/noExplicitAny: see options
  private readonly transformer?: TWebSocketOutboundTransformer<any, M>;
  private readonly batchLimit: number;
  private readonly publishToSelf: boolean;
  private readonly logger: ILogger;
  /** Per-client tail of pending transformer sends, so an encrypted client gets messages in order. */
  private readonly pending = new WeakMap<Client<M>, Promise<void>>();

  constructor(opts: ILocalDeliveryOptions<M>) {
    this.server = opts.server;
    this.registry = opts.registry;
    this.transformer = opts.transformer;
    this.batchLimit = opts.batchLimit;
    this.publishToSelf = opts.publishToSelf;
    this.logger = opts.logger;
  }

  // Each method takes an optional pre-built `frame` so a caller that already
  // serialized the payload (send(): local + Redis) does not do it twice.

  toClient(clientId: string, event: string, data: unknown, frame?: string): void {
    const client = this.registry.get(clientId);
    if (!client) return;
    this.deliverOne(client, frame ?? encodeFrame(event, data), event, data);
  }

  toUser(userId: string, event: string, data: unknown, exclude?: readonly string[]): void {
    let frame: string | undefined; // encoded on the first recipient only
    for (const client of this.registry.userClients(userId)) {
      if (exclude?.includes(client.id)) continue;
      frame ??= encodeFrame(event, data);
      this.deliverOne(client, frame, event, data);
    }
  }

  toRoom(room: string, event: string, data: unknown, exclude?: readonly string[], frame?: string): void {
    frame ??= encodeFrame(event, data);
    this.publishNative(room, frame, exclude);
    if (this.registry.encrypted.size > 0) {
      this.deliverEncrypted(this.encryptedMembers(room, exclude), frame, event, data);
    }
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
    try {
      if (client.socket.send(frame) <= 0) client.backpressured = true;
    } catch (error) {
      // One broken socket must not cost the other recipients their copy, nor the caller an exception.
      this.logger.error(`socket send failed for client ${client.id}; message dropped for it`, error);
    }
  }

  /**
   * Native fan-out to a topic's subscribers minus `exclude`. One excluded client
   * publishes through its own socket (Bun skips the publisher); several are
   * unsubscribed for the duration of the synchronous publish (and re-subscribed
   * even if it throws; the error still reaches the caller). Either way the cost
   * is in the number excluded, not in the size of the room.
   */
  private publishNative(topic: string, frame: string, exclude?: readonly string[]): void {
    if (!exclude || exclude.length === 0) {
      this.server.publish(topic, frame);
      return;
    }
    const excluded: Client<M>[] = [];
    for (const id of exclude) {
      const client = this.registry.get(id);
      if (client && !client.encrypted && client.socket.isSubscribed(topic)) excluded.push(client);
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
      this.logger.error(`could not re-subscribe client ${client.id} to ${topic}`, error);
    }
  }

  private encryptedMembers(room: string, exclude?: readonly string[]): Client<M>[] {
    const targets: Client<M>[] = [];
    // Walk whichever group is smaller.
    const [walk, check] =
      this.registry.roomSize(room) < this.registry.encrypted.size
        ? [this.registry.roomMembers(room), (c: Client<M>) => c.encrypted]
        : [this.registry.encrypted, (c: Client<M>) => c.rooms.has(room)];
    for (const client of walk) {
      if (check(client) && !exclude?.includes(client.id)) targets.push(client);
    }
    return targets;
  }

  private deliverOne(client: Client<M>, frame: string, event: string, data: unknown): void {
    if (client.encrypted) this.deliverEncrypted([client], frame, event, data);
    else this.write(client, frame);
  }

  private deliverEncrypted(targets: Client<M>[], frame: string, event: string, data: unknown): void {
    if (targets.length === 0) return;
    const transformer = this.transformer;
    if (!transformer) {
      // Encryption enabled without a transformer: nothing to transform, deliver as is.
      for (const client of targets) this.write(client, frame);
      return;
    }
    const tasks = targets.map(
      (client) => () => this.enqueueTransformed(client, transformer, frame, event, data),
    );
    // Tasks never reject (failures are logged per client), so the window never aborts early.
    void executePromiseWithLimit({ tasks, limit: this.batchLimit });
  }

  private enqueueTransformed(
    client: Client<M>,
    // biome-ignore lint/suspicious/noExplicitAny: see options
    transformer: TWebSocketOutboundTransformer<any, M>,
    frame: string,
    event: string,
    data: unknown,
  ): Promise<void> {
    const previous = this.pending.get(client) ?? Promise.resolve();
    const current = previous.then(async () => {
      try {
        const transformed = await transformer({ client, event, data });
        if (client.state === WebSocketClientStates.DISCONNECTED) return;
        this.write(client, transformed ? encodeFrame(transformed.event, transformed.data) : frame);
      } catch (error) {
        // Never fall back to plaintext for a client that asked for encryption.
        this.logger.error(`outboundTransformer failed for client ${client.id}; message dropped`, error);
      }
    });
    this.pending.set(client, current);
    void current.then(() => {
      if (this.pending.get(client) === current) this.pending.delete(client);
    });
    return current;
  }
}
