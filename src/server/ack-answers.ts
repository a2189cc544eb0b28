import type { IAckTarget, ICommandMessage, TInstanceMessage } from '../bus/commands.ts';
import { WebSocketClientStates, WebSocketLimits } from '../common/constants.ts';
import type { AnyRecord, ILogger, IWebSocketClient } from '../common/types.ts';
import { ackFrame, answerTooLarge, tooLargeError, WebSocketAckError } from './acknowledgements.ts';
import type { ClientRegistry } from './client-registry.ts';

/**
 * What an acknowledged send to many (`send({ ack: true })` to a room, a user or everyone)
 * resolves with, once every recipient on every instance answered or at the timeout.
 */
export class AckAnswers<R = unknown> {
  constructor(
    /** Client id → what its listeners returned (undefined when they returned nothing). */
    readonly answers: Map<string, R>,
    /** Recipients that got the message and did not answer in time (or answered too large). */
    readonly missing: string[],
    /** Recipients that got the message but were not waited for: the per-call or per-instance cap. */
    readonly notAwaited: number,
    /** Instances that reported whom they delivered to, this one included. */
    readonly instances: number,
    /** True when every instance that received the message reported in time. */
    readonly complete: boolean,
  ) {}
}

interface ICall {
  /** A client id that another instance holds, not a room: the call resolves like `sendToClient`. */
  destination?: string;
  single: boolean;
  awaiting: Set<string>;
  answers: Map<string, unknown>;
  refused: Set<string>;
  notAwaited: number;
  reports: number;
  /** Instances expected to report (unknown until Redis says how many took the command). */
  expected: number;
  failed: boolean;
  finish(): void;
}

/** Recipients here of another instance's call, until they answered or its timeout. */
interface IHeld {
  from: string;
  clients: Set<string>;
  timer: ReturnType<typeof setTimeout>;
}

export interface IAckAnswersOptions<M extends object> {
  serverId: string;
  registry: ClientRegistry<M>;
  logger: ILogger;
  deliver: (client: IWebSocketClient<M>, event: string, data: unknown, frame: string) => void;
  /** Publishes the call for the other instances; resolves to how many took it (undefined: unknown). */
  publish?: (message: ICommandMessage) => Promise<number | undefined>;
  /** Sends a report or an answer to the instance that asked. */
  tell?: (serverId: string, message: TInstanceMessage) => void;
}

/**
 * Acknowledged sends to many. One ack id per call, shared by its recipients; each instance
 * delivers to its own recipients, reports their ids to the caller, then relays each answer.
 * Bounded: at most `MAX_ACK_RECIPIENTS_PER_CALL` recipients awaited per call (per instance and
 * in all at the caller) and `MAX_PENDING_ACK_ANSWERS` awaited by an instance at once.
 */
export class AckCollector<M extends object = AnyRecord> {
  private readonly calls = new Map<string, ICall>();
  private readonly held = new Map<string, IHeld>();
  /** Answers awaited on this instance now: its calls' recipients and the recipients in `held`. */
  private pending = 0;

  constructor(private readonly opts: IAckAnswersOptions<M>) {}

  get size(): number {
    return this.pending;
  }

  /**
   * Delivers to every recipient of `to` on every instance and collects the answers. With
   * `to.room` naming a client held by another instance, resolves with its answer or rejects
   * like `sendToClient({ ack: true })`.
   */
  async collect(
    to: IAckTarget,
    event: string,
    data: unknown,
    timeout: number,
    exclude?: string[],
  ): Promise<unknown> {
    const ackId = crypto.randomUUID();
    // Built first: data that cannot be serialized throws before anything is sent.
    const frame = ackFrame(event, data, ackId);
    const call: ICall = {
      single: false,
      awaiting: new Set(),
      answers: new Map(),
      refused: new Set(),
      notAwaited: 0,
      reports: 0,
      expected: this.opts.publish ? Number.POSITIVE_INFINITY : 0,
      failed: false,
      finish: () => {},
    };
    if (to.room !== undefined) call.destination = to.room;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finished = new Promise<void>((resolve) => {
      call.finish = resolve;
      timer = setTimeout(resolve, timeout);
    });
    this.calls.set(ackId, call);
    for (const client of this.recipients(to, exclude)) {
      this.await(call, client.id);
      this.opts.deliver(client, event, data, frame);
    }
    this.opts
      .publish?.({
        from: this.opts.serverId,
        command: {
          kind: 'deliverMany',
          to,
          event,
          data,
          ackId,
          timeout,
          ...(exclude ? { exclude } : {}),
        },
      })
      .then(
        (receivers) => {
          // Redis counts our own subscription among the receivers.
          call.expected = receivers === undefined ? Number.POSITIVE_INFINITY : receivers - 1;
          this.check(call);
        },
        (error: unknown) => {
          call.failed = true;
          call.expected = 0;
          this.opts.logger.warn(
            '[WebSocketServerHelper] acknowledged send not published to the other instances',
            error instanceof Error ? error.message : error,
          );
          this.check(call);
        },
      );
    this.check(call);
    try {
      await finished;
    } finally {
      clearTimeout(timer);
      this.calls.delete(ackId);
      this.pending -= call.awaiting.size;
    }
    if (call.single) {
      const clientId = call.destination!;
      if (call.answers.has(clientId)) return call.answers.get(clientId);
      if (call.refused.has(clientId)) throw tooLargeError(clientId);
      throw new WebSocketAckError(
        'ACK_TIMEOUT',
        `client ${clientId} did not acknowledge within ${timeout}ms`,
      );
    }
    const missing = [...call.awaiting].filter((id) => !call.answers.has(id));
    return new AckAnswers(
      call.answers,
      missing,
      call.notAwaited,
      1 + call.reports,
      !call.failed && call.reports >= call.expected,
    );
  }

  /** Another instance's call: deliver to our recipients, report them, hold them for their answers. */
  received(from: string, command: Extract<ICommandMessage['command'], { kind: 'deliverMany' }>): void {
    const { ackId, to, event, data, exclude } = command;
    if (this.held.has(ackId)) return;
    const single = to.room !== undefined && this.opts.registry.get(to.room) !== undefined;
    const clients = new Set<string>();
    let notAwaited = 0;
    let frame: string | undefined;
    for (const client of this.recipients(to, exclude)) {
      frame ??= ackFrame(event, data, ackId);
      if (
        clients.size < WebSocketLimits.MAX_ACK_RECIPIENTS_PER_CALL &&
        this.pending < WebSocketLimits.MAX_PENDING_ACK_ANSWERS
      ) {
        clients.add(client.id);
        this.pending++;
      } else notAwaited++;
      this.opts.deliver(client, event, data, frame);
    }
    if (clients.size > 0) {
      const wait = Math.min(Math.max(command.timeout, 1), WebSocketLimits.MAX_RELAYED_ACK_TIMEOUT);
      const timer = setTimeout(() => this.forget(ackId), wait);
      this.held.set(ackId, { from, clients, timer });
    }
    this.opts.tell?.(from, {
      kind: 'delivered',
      ackId,
      clients: [...clients],
      notAwaited,
      ...(single ? { single: true } : {}),
    });
  }

  /** An instance's report on a call of ours. */
  delivered(message: Extract<TInstanceMessage, { kind: 'delivered' }>): void {
    const call = this.calls.get(message.ackId);
    if (!call) return;
    call.reports++;
    if (message.single) call.single = true;
    call.notAwaited += message.notAwaited;
    for (const clientId of message.clients) this.await(call, clientId);
    this.check(call);
  }

  /** An answer relayed by the instance holding the recipient. */
  answered(message: Extract<TInstanceMessage, { kind: 'answer' }>): void {
    const call = this.calls.get(message.ackId);
    if (call) this.record(call, message.clientId, message.data, message.tooLarge === true);
  }

  /** A `ws:ack` for one of the calls (ours or held); false when the id is not one of them. */
  acknowledge(client: IWebSocketClient<M>, ackId: string, data: unknown): boolean {
    const call = this.calls.get(ackId);
    if (call) {
      this.record(call, client.id, data, answerTooLarge(data));
      return true;
    }
    const held = this.held.get(ackId);
    if (!held) return false;
    if (!held.clients.delete(client.id)) return true;
    this.pending--;
    const tooLarge = answerTooLarge(data);
    this.opts.tell?.(held.from, {
      kind: 'answer',
      ackId,
      clientId: client.id,
      ...(tooLarge ? { tooLarge: true } : { data }),
    });
    if (held.clients.size === 0) this.forget(ackId);
    return true;
  }

  stop(): void {
    for (const call of this.calls.values()) {
      call.failed = true;
      call.finish();
    }
    for (const ackId of [...this.held.keys()]) this.forget(ackId);
  }

  private forget(ackId: string): void {
    const held = this.held.get(ackId);
    if (!held) return;
    clearTimeout(held.timer);
    this.held.delete(ackId);
    this.pending -= held.clients.size;
  }

  /** Adds a recipient to wait for, within the per-call and per-instance caps. */
  private await(call: ICall, clientId: string): void {
    if (call.awaiting.has(clientId)) return;
    if (
      call.awaiting.size >= WebSocketLimits.MAX_ACK_RECIPIENTS_PER_CALL ||
      this.pending >= WebSocketLimits.MAX_PENDING_ACK_ANSWERS
    ) {
      call.notAwaited++;
      return;
    }
    call.awaiting.add(clientId);
    this.pending++;
  }

  private record(call: ICall, clientId: string, data: unknown, tooLarge: boolean): void {
    if (!call.awaiting.has(clientId) || call.answers.has(clientId) || call.refused.has(clientId)) return;
    if (tooLarge) {
      call.refused.add(clientId);
      this.opts.logger.warn(
        `[WebSocketServerHelper] answer of client ${clientId} refused: larger than ${WebSocketLimits.MAX_ACK_ANSWER_BYTES} bytes`,
      );
    } else call.answers.set(clientId, data);
    this.check(call);
  }

  private check(call: ICall): void {
    const settled = call.answers.size + call.refused.size;
    if (call.single ? settled > 0 : call.reports >= call.expected && settled >= call.awaiting.size) {
      call.finish();
    }
  }

  private recipients(to: IAckTarget, exclude: readonly string[] | undefined): IWebSocketClient<M>[] {
    const { registry } = this.opts;
    let group: Iterable<IWebSocketClient<M>>;
    if (to.room !== undefined) {
      const owner = registry.get(to.room);
      group = owner ? [owner] : registry.roomMembers(to.room);
    } else if (to.userId !== undefined) group = registry.userClients(to.userId);
    else group = registry.clients.values();
    const list: IWebSocketClient<M>[] = [];
    for (const client of group) {
      if (client.state === WebSocketClientStates.AUTHENTICATED && !exclude?.includes(client.id))
        list.push(client);
    }
    return list;
  }
}
