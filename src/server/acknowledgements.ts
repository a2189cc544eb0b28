import type { AnyRecord, IWebSocketClient } from '../common/types.ts';
import { frameFromJson, serializeData } from '../utils/json.ts';
import type { ClientRegistry } from './client-registry.ts';

/** Why an acknowledged send did not resolve. */
export type TAckErrorCode = 'ACK_TIMEOUT' | 'NOT_DELIVERED';

/** Rejection of `sendToClient({ ack: true })`. */
export class WebSocketAckError extends Error {
  override readonly name = 'WebSocketAckError';
  constructor(
    /** `ACK_TIMEOUT`: no acknowledgement within `timeout`; `NOT_DELIVERED`: it could not be sent at all. */
    readonly code: TAckErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** `{ event, data, ack }`: a frame asking the client's SDK to answer `{ event: 'ws:ack', id: ack }` once handled. */
export function ackFrame(event: string, data: unknown, ackId: string): string {
  return `${frameFromJson(event, serializeData(data)).slice(0, -1)},"ack":${JSON.stringify(ackId)}}`;
}

interface IWaiting {
  clientId: string;
  resolve(): void;
  reject(error: WebSocketAckError): void;
  timer: ReturnType<typeof setTimeout>;
}

interface IRelayed {
  clientId: string;
  /** The instance that asked. */
  from: string;
  timer: ReturnType<typeof setTimeout>;
}

export interface IAcknowledgementOptions<M extends object> {
  registry: ClientRegistry<M>;
  /**
   * Delivers the ack frame like any frame to one client: written as is, or (encrypted client)
   * handed to the outbound transformer as `frame`, so the ack id travels inside the ciphertext.
   */
  deliver: (client: IWebSocketClient<M>, event: string, data: unknown, frame: string) => void;
  /** Asks the instance holding a client to deliver (undefined in single-instance mode). */
  relay?: (
    clientId: string,
    event: string,
    data: unknown,
    ackId: string,
    timeout: number,
  ) => Promise<unknown>;
  /** Sends an acknowledgement back to the instance that asked. */
  answer?: (from: string, ackId: string) => void;
}

/**
 * Server → client messages that wait for the client's acknowledgement. Each waits at most
 * its timeout, so what is held is bounded by the send rate times the timeout. A client held
 * by another instance is reached over `ws:command`; its acknowledgement comes back on the
 * asking instance's own channel.
 */
export class Acknowledgements<M extends object = AnyRecord> {
  /** Sends of this instance waiting for an acknowledgement, by ack id. */
  private readonly waiting = new Map<string, IWaiting>();
  /** Sends of other instances delivered here, waiting for the client's acknowledgement. */
  private readonly relayed = new Map<string, IRelayed>();

  constructor(private readonly opts: IAcknowledgementOptions<M>) {}

  send(clientId: string, event: string, data: unknown, timeout: number): Promise<void> {
    const ackId = crypto.randomUUID();
    const client = this.opts.registry.get(clientId);
    // Serialized before waiting, so data that cannot be sent throws at the caller.
    const frame = client ? ackFrame(event, data, ackId) : undefined;
    if (!client && !this.opts.relay) {
      return Promise.reject(new WebSocketAckError('NOT_DELIVERED', `client ${clientId} is not connected`));
    }
    const acked = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ackId);
        reject(
          new WebSocketAckError('ACK_TIMEOUT', `client ${clientId} did not acknowledge within ${timeout}ms`),
        );
      }, timeout);
      this.waiting.set(ackId, { clientId, resolve, reject, timer });
    });
    if (client && frame) this.opts.deliver(client, event, data, frame);
    else {
      this.opts.relay!(clientId, event, data, ackId, timeout).catch(() => {
        this.settle(ackId, new WebSocketAckError('NOT_DELIVERED', 'Redis did not take the message'));
      });
    }
    return acked;
  }

  /** Another instance asks us to deliver to a client we hold. */
  deliver(
    from: string,
    clientId: string,
    event: string,
    data: unknown,
    ackId: string,
    timeout: number,
  ): void {
    const client = this.opts.registry.get(clientId);
    if (!client || this.relayed.has(ackId)) return;
    const timer = setTimeout(() => this.relayed.delete(ackId), Math.min(Math.max(timeout, 1), 600_000));
    this.relayed.set(ackId, { clientId, from, timer });
    this.opts.deliver(client, event, data, ackFrame(event, data, ackId));
  }

  /** A `ws:ack` from a client; one for an id it was not sent (or too late) is dropped. */
  acknowledge(client: IWebSocketClient<M>, id: unknown): void {
    if (typeof id !== 'string') return;
    const waiting = this.waiting.get(id);
    if (waiting) {
      if (waiting.clientId === client.id) this.settle(id);
      return;
    }
    const relayed = this.relayed.get(id);
    if (!relayed || relayed.clientId !== client.id) return;
    clearTimeout(relayed.timer);
    this.relayed.delete(id);
    this.opts.answer?.(relayed.from, id);
  }

  /** An acknowledgement relayed back by the instance holding the client. */
  acknowledged(ackId: string): void {
    this.settle(ackId);
  }

  stop(): void {
    for (const ackId of [...this.waiting.keys()]) {
      this.settle(ackId, new WebSocketAckError('NOT_DELIVERED', 'the server is shutting down'));
    }
    for (const relayed of this.relayed.values()) clearTimeout(relayed.timer);
    this.relayed.clear();
  }

  get size(): number {
    return this.waiting.size + this.relayed.size;
  }

  private settle(ackId: string, error?: WebSocketAckError): void {
    const waiting = this.waiting.get(ackId);
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.waiting.delete(ackId);
    if (error) waiting.reject(error);
    else waiting.resolve();
  }
}
