import { WebSocketLimits } from '../common/constants.ts';
import type { AnyRecord, IWebSocketClient } from '../common/types.ts';
import { frameFromJson, serializeData } from '../utils/json.ts';
import type { ClientRegistry } from './client-registry.ts';

/** Why an acknowledged send did not resolve. */
export type TAckErrorCode = 'ACK_TIMEOUT' | 'NOT_DELIVERED' | 'ANSWER_TOO_LARGE';

/** Rejection of `sendToClient({ ack: true })`. */
export class WebSocketAckError extends Error {
  override readonly name = 'WebSocketAckError';
  constructor(
    /**
     * `ACK_TIMEOUT`: no acknowledgement within `timeout`; `NOT_DELIVERED`: it could not be sent at
     * all; `ANSWER_TOO_LARGE`: the client answered with more than `MAX_ACK_ANSWER_BYTES`.
     */
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

/** True when an answer's JSON is over `MAX_ACK_ANSWER_BYTES` (UTF-8). */
export function answerTooLarge(data: unknown): boolean {
  return Buffer.byteLength(serializeData(data) ?? '') > WebSocketLimits.MAX_ACK_ANSWER_BYTES;
}

export function tooLargeError(clientId: string): WebSocketAckError {
  return new WebSocketAckError(
    'ANSWER_TOO_LARGE',
    `the answer of client ${clientId} is larger than ${WebSocketLimits.MAX_ACK_ANSWER_BYTES} bytes`,
  );
}

interface IWaiting {
  clientId: string;
  resolve(value: unknown): void;
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
  /** Sends an acknowledgement (and the client's answer) back to the instance that asked. */
  answer?: (from: string, ackId: string, data: unknown, tooLarge: boolean) => void;
  /** Takes a `ws:ack` whose id is none of ours: an acknowledged send to many. */
  others?: (client: IWebSocketClient<M>, ackId: string, data: unknown) => void;
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
  /** How many of `relayed` each client has (bounded: a forged flood of deliver commands holds little). */
  private readonly relayedPerClient = new Map<string, number>();

  constructor(private readonly opts: IAcknowledgementOptions<M>) {}

  /** Resolves with what the client's listeners returned (see the SDK). */
  send(clientId: string, event: string, data: unknown, timeout: number): Promise<unknown> {
    const ackId = crypto.randomUUID();
    const client = this.opts.registry.get(clientId);
    // Serialized before waiting, so data that cannot be sent throws at the caller.
    const frame = client ? ackFrame(event, data, ackId) : undefined;
    if (!client && !this.opts.relay) {
      return Promise.reject(new WebSocketAckError('NOT_DELIVERED', `client ${clientId} is not connected`));
    }
    const acked = new Promise<unknown>((resolve, reject) => {
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

  /**
   * Another instance asks us to deliver to a client we hold. What is held meanwhile is bounded:
   * at most `MAX_RELAYED_ACKS` waiting in all and `MAX_RELAYED_ACKS_PER_CLIENT` per client, each
   * for at most `MAX_RELAYED_ACK_TIMEOUT`; past a count the message is not delivered ('refused',
   * the sender's promise then times out).
   */
  deliver(
    from: string,
    clientId: string,
    event: string,
    data: unknown,
    ackId: string,
    timeout: number,
  ): 'held' | 'refused' | 'ignored' {
    const client = this.opts.registry.get(clientId);
    if (!client || this.relayed.has(ackId)) return 'ignored';
    const count = this.relayedPerClient.get(clientId) ?? 0;
    if (
      this.relayed.size >= WebSocketLimits.MAX_RELAYED_ACKS ||
      count >= WebSocketLimits.MAX_RELAYED_ACKS_PER_CLIENT
    ) {
      return 'refused';
    }
    const frame = ackFrame(event, data, ackId);
    const wait = Math.min(Math.max(timeout, 1), WebSocketLimits.MAX_RELAYED_ACK_TIMEOUT);
    const timer = setTimeout(() => this.forgetRelayed(ackId), wait);
    this.relayed.set(ackId, { clientId, from, timer });
    this.relayedPerClient.set(clientId, count + 1);
    this.opts.deliver(client, event, data, frame);
    return 'held';
  }

  private forgetRelayed(ackId: string): IRelayed | undefined {
    const relayed = this.relayed.get(ackId);
    if (!relayed) return undefined;
    clearTimeout(relayed.timer);
    this.relayed.delete(ackId);
    const left = (this.relayedPerClient.get(relayed.clientId) ?? 1) - 1;
    if (left > 0) this.relayedPerClient.set(relayed.clientId, left);
    else this.relayedPerClient.delete(relayed.clientId);
    return relayed;
  }

  /**
   * A `ws:ack` from a client, `data` its answer; one for an id it was not sent (or too late) is
   * dropped. An answer larger than `MAX_ACK_ANSWER_BYTES` rejects with `ANSWER_TOO_LARGE`.
   */
  acknowledge(client: IWebSocketClient<M>, id: unknown, data?: unknown): void {
    if (typeof id !== 'string') return;
    const waiting = this.waiting.get(id);
    if (waiting) {
      if (waiting.clientId === client.id) this.acknowledged(id, data, answerTooLarge(data));
      return;
    }
    const relayed = this.relayed.get(id);
    if (!relayed) {
      this.opts.others?.(client, id, data);
      return;
    }
    if (relayed.clientId !== client.id) return;
    this.forgetRelayed(id);
    this.opts.answer?.(relayed.from, id, data, answerTooLarge(data));
  }

  /** An acknowledgement (here or relayed back by the instance holding the client). */
  acknowledged(ackId: string, data?: unknown, tooLarge = false): void {
    const waiting = this.waiting.get(ackId);
    if (!waiting) return;
    if (tooLarge) this.settle(ackId, tooLargeError(waiting.clientId));
    else this.settle(ackId, undefined, data);
  }

  stop(): void {
    for (const ackId of [...this.waiting.keys()]) {
      this.settle(ackId, new WebSocketAckError('NOT_DELIVERED', 'the server is shutting down'));
    }
    for (const relayed of this.relayed.values()) clearTimeout(relayed.timer);
    this.relayed.clear();
    this.relayedPerClient.clear();
  }

  get size(): number {
    return this.waiting.size + this.relayed.size;
  }

  private settle(ackId: string, error?: WebSocketAckError, value?: unknown): void {
    const waiting = this.waiting.get(ackId);
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.waiting.delete(ackId);
    if (error) waiting.reject(error);
    else waiting.resolve(value);
  }
}
