import {
  type ICommandMessage,
  instanceChannel,
  listenForCommands,
  publishCommand,
  type TCommand,
  type TCommandTarget,
  type TInstanceMessage,
} from '../bus/commands.ts';
import type { RedisBus } from '../bus/cross-instance-bus.ts';
import { WebSocketClientStates } from '../common/constants.ts';
import { isValidRoomName } from '../common/room-names.ts';
import type { AnyRecord, ILogger, IWebSocketClient } from '../common/types.ts';
import type { AckCollector } from './ack-answers.ts';
import type { Acknowledgements } from './acknowledgements.ts';
import type { ClientRegistry } from './client-registry.ts';

const PREFIX = '[WebSocketServerHelper]';
/** Default bound on waiting for the other instances' counts. */
export const COMMAND_WAIT = 1_000;

/** What a server command did. */
export interface ICommandResult {
  /** Connections it acted on, on this instance plus the instances that answered in time. */
  affected: number;
  /** Instances that reported (this one included). */
  instances: number;
  /** True when every instance that received the command answered within `wait`. */
  complete: boolean;
}

export interface IServerCommandOptions<M extends object> {
  serverId: string;
  registry: ClientRegistry<M>;
  close: (client: IWebSocketClient<M>, code: number, reason: string) => void;
  acks: Acknowledgements<M>;
  /** Acknowledged sends to many: `deliverMany` commands and their reports and answers. */
  collector?: AckCollector<M>;
  logger: ILogger;
  bus?: RedisBus;
}

interface ICollecting {
  count: number;
  answers: number;
  expected: number;
  done(): void;
}

/**
 * Disconnect / join / leave acting on a client or on every connection of a user, wherever
 * they are connected. This instance acts at once; in Redis mode the command then goes out on
 * `ws:command` and every instance holding a target acts and reports its count on the asker's
 * own channel, which the asker collects for at most `wait` ms.
 */
export class ServerCommands<M extends object = AnyRecord> {
  private readonly collecting = new Map<string, ICollecting>();
  private next = 0;

  constructor(private readonly opts: IServerCommandOptions<M>) {}

  async start(): Promise<void> {
    const sub = this.opts.bus?.subscriber();
    if (!sub) return;
    await listenForCommands(sub, {
      serverId: this.opts.serverId,
      guard: this.opts.bus!.guard,
      onCommand: (message) => this.received(message),
      onInstanceMessage: (message) => this.answered(message),
    });
  }

  async run(command: TCommand, wait = COMMAND_WAIT): Promise<ICommandResult> {
    const local = this.apply(command);
    const pub = this.opts.bus?.publisher();
    if (!this.opts.bus) return { affected: local, instances: 1, complete: true };
    if (pub?.status !== 'ready') return { affected: local, instances: 1, complete: false };
    const requestId = `${this.opts.serverId}:${++this.next}`;
    const entry: ICollecting = {
      count: local,
      answers: 0,
      expected: Number.POSITIVE_INFINITY,
      done: () => {},
    };
    const finished = new Promise<void>((resolve) => {
      entry.done = resolve;
    });
    this.collecting.set(requestId, entry);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const receivers = await publishCommand(
        pub,
        { from: this.opts.serverId, command, requestId },
        this.opts.bus.guard,
      );
      // Redis counts our own subscription among the receivers. On a Redis Cluster it counts only
      // the subscribers of the node that took the PUBLISH, so there the whole `wait` is waited.
      entry.expected = pub.isCluster ? Number.POSITIVE_INFINITY : receivers - 1;
      if (entry.answers < entry.expected) {
        await Promise.race([finished, new Promise<void>((resolve) => (timer = setTimeout(resolve, wait)))]);
      }
    } catch (error) {
      this.opts.logger.warn(
        `${PREFIX} server command not published`,
        error instanceof Error ? error.message : error,
      );
    } finally {
      clearTimeout(timer);
      this.collecting.delete(requestId);
    }
    return { affected: entry.count, instances: 1 + entry.answers, complete: entry.answers >= entry.expected };
  }

  /** Publishes an acknowledged message for a client held by another instance. */
  relay(clientId: string, event: string, data: unknown, ackId: string, timeout: number): Promise<number> {
    const pub = this.opts.bus?.publisher();
    if (pub?.status !== 'ready') return Promise.reject(new Error('Redis is not connected'));
    return publishCommand(
      pub,
      { from: this.opts.serverId, command: { kind: 'deliver', clientId, event, data, ackId, timeout } },
      this.opts.bus?.guard,
    );
  }

  /** Publishes an acknowledged send to many; resolves to how many instances took it (undefined: unknown). */
  async relayMany(message: ICommandMessage): Promise<number | undefined> {
    const pub = this.opts.bus?.publisher();
    if (pub?.status !== 'ready') throw new Error('Redis is not connected');
    const receivers = await publishCommand(pub, message, this.opts.bus?.guard);
    // On a Redis Cluster, Redis counts only the subscribers of the node that took the PUBLISH.
    return pub.isCluster ? undefined : receivers;
  }

  /** Hands an acknowledgement (and the client's answer) back to the instance that asked for it. */
  answerAck(from: string, ackId: string, data: unknown, tooLarge: boolean): void {
    this.tell(from, tooLarge ? { kind: 'ack', ackId, tooLarge } : { kind: 'ack', ackId, data });
  }

  /** Acts on this instance's targets; returns how many connections it acted on. */
  apply(command: TCommand): number {
    if (command.kind === 'deliver' || command.kind === 'deliverMany') return 0;
    const targets = this.targets(command.target);
    for (const client of targets) {
      if (command.kind === 'disconnect') this.opts.close(client, command.code, command.reason);
      else if (command.kind === 'join')
        for (const room of command.rooms) this.opts.registry.join(client, room);
      else for (const room of command.rooms) if (room !== client.id) this.opts.registry.leave(client, room);
    }
    return targets.length;
  }

  private targets(target: TCommandTarget): IWebSocketClient<M>[] {
    if (target.clientId !== undefined) {
      const client = this.opts.registry.get(target.clientId);
      return client?.state === WebSocketClientStates.AUTHENTICATED ? [client] : [];
    }
    return [...this.opts.registry.userClients(target.userId)];
  }

  private received(message: ICommandMessage): void {
    if (message.from === this.opts.serverId) return; // already applied when it was sent
    const { command } = message;
    if (command.kind === 'deliver') {
      const held = this.opts.acks.deliver(
        message.from,
        command.clientId,
        command.event,
        command.data,
        command.ackId,
        command.timeout,
      );
      if (held === 'refused' && this.opts.bus) {
        this.opts.bus.guard.drop(
          'deliverRefused',
          `acknowledged message for ${command.clientId} refused: too many waiting`,
        );
      }
      return;
    }
    if (command.kind === 'deliverMany') {
      this.opts.collector?.received(message.from, command);
      return;
    }
    // Room names are checked again: an emitter of another version may send anything.
    if (command.kind !== 'disconnect' && !command.rooms.every(isValidRoomName)) return;
    const count = this.apply(command);
    if (message.requestId) this.tell(message.from, { kind: 'count', requestId: message.requestId, count });
  }

  private answered(message: TInstanceMessage): void {
    if (message.kind === 'ack') {
      this.opts.acks.acknowledged(message.ackId, message.data, message.tooLarge);
      return;
    }
    if (message.kind === 'delivered' || message.kind === 'answer') {
      if (message.kind === 'delivered') this.opts.collector?.delivered(message);
      else this.opts.collector?.answered(message);
      return;
    }
    const entry = this.collecting.get(message.requestId);
    if (!entry) return;
    entry.count += message.count;
    entry.answers++;
    if (entry.answers >= entry.expected) entry.done();
  }

  tell(serverId: string, message: TInstanceMessage): void {
    const pub = this.opts.bus?.publisher();
    if (pub?.status !== 'ready') return;
    const guard = this.opts.bus!.guard;
    pub.publish(instanceChannel(serverId), guard.seal(JSON.stringify(message))).catch(() => {});
  }
}
