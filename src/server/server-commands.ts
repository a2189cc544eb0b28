import {
  type ICommandMessage,
  type IConnectionInfo,
  INSPECT_MAX_CONNECTIONS,
  INSPECT_MAX_ROOMS,
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

/** What `inspect` found: the target's connections on the instances that answered in time. */
export interface IInspectResult {
  /** At most `INSPECT_MAX_CONNECTIONS` per instance, this one's first. */
  connections: IConnectionInfo[];
  /** Instances that reported (this one included). */
  instances: number;
  /** True when every instance that received the command answered within `wait`. */
  complete: boolean;
}

interface ICollecting {
  count: number;
  /** Filled by the answers to an `inspect`. */
  connections?: IConnectionInfo[];
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
    const entry = await this.collect(command, wait, { count: this.apply(command) });
    return { affected: entry.count, instances: 1 + entry.answers, complete: entry.complete };
  }

  /**
   * Describes the target's connections on every instance: this one's at once, the others' as
   * they answer within `wait` ms. Nothing is changed. Bounded: each instance describes at most
   * `INSPECT_MAX_CONNECTIONS` connections.
   */
  async inspect(target: TCommandTarget, wait = COMMAND_WAIT): Promise<IInspectResult> {
    const entry = await this.collect({ kind: 'inspect', target }, wait, {
      count: 0,
      connections: this.describe(target),
    });
    return { connections: entry.connections ?? [], instances: 1 + entry.answers, complete: entry.complete };
  }

  /** Publishes `command` asking for answers and collects them for at most `wait` ms. */
  private async collect(
    command: TCommand,
    wait: number,
    start: Pick<ICollecting, 'count' | 'connections'>,
  ): Promise<ICollecting & { complete: boolean }> {
    const pub = this.opts.bus?.publisher();
    const entry: ICollecting = {
      ...start,
      answers: 0,
      expected: Number.POSITIVE_INFINITY,
      done: () => {},
    };
    if (!this.opts.bus) return { ...entry, complete: true };
    if (pub?.status !== 'ready') return { ...entry, complete: false };
    const requestId = `${this.opts.serverId}:${++this.next}`;
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
    return { ...entry, complete: entry.answers >= entry.expected };
  }

  /** This instance's connections of `target`, described for `inspect` (bounded). */
  private describe(target: TCommandTarget): IConnectionInfo[] {
    const out: IConnectionInfo[] = [];
    for (const client of this.targets(target)) {
      if (out.length >= INSPECT_MAX_CONNECTIONS) break;
      const rooms: string[] = [];
      for (const room of client.rooms) {
        if (room !== client.id && rooms.length < INSPECT_MAX_ROOMS) rooms.push(room);
      }
      out.push({
        clientId: client.id,
        ...(client.userId === undefined ? {} : { userId: client.userId }),
        serverId: this.opts.serverId,
        rooms,
        roomCount: client.rooms.size - (client.rooms.has(client.id) ? 1 : 0),
        encrypted: client.encrypted,
        connectedAt: client.connectedAt,
        lastActivity: client.lastActivity,
      });
    }
    return out;
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
    if (command.kind === 'deliver' || command.kind === 'deliverMany' || command.kind === 'inspect') return 0;
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
    if (command.kind === 'inspect') {
      if (message.requestId) {
        const connections = this.describe(command.target);
        this.tell(message.from, { kind: 'connections', requestId: message.requestId, connections });
      }
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
    if (message.kind === 'connections') {
      const space = INSPECT_MAX_CONNECTIONS * 100 - (entry.connections?.length ?? 0); // 100 instances at most
      entry.connections?.push(...message.connections.slice(0, Math.max(0, space)));
    } else entry.count += message.count;
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
