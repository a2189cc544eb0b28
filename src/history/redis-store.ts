import type { BusSigner } from '../bus/signing.ts';
import type { TPubSubKind } from '../redis/pubsub-kind.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';
import { generationKey, historyKeys } from './keys.ts';
import { epochSource } from './policy.ts';
import {
  HOLE_SCRIPT,
  PUBLISH_SCRIPT,
  READ_SCRIPT,
  REMOVE_SCRIPT,
  SHARDED_PUBLISH_SCRIPT,
} from './redis-scripts.ts';
import type {
  IHistoryPage,
  IHistoryQuery,
  IHistoryStore,
  IResolvedHistoryPolicy,
  IStoredPublication,
  IStreamPosition,
} from './types.ts';

type TScriptCall = (...args: Array<string | number>) => Promise<unknown>;
interface IScriptedClient {
  roomcastHistoryPublish: TScriptCall;
  roomcastHistorySPublish: TScriptCall;
  roomcastHistoryRead: TScriptCall;
  roomcastHistoryRemove: TScriptCall;
  roomcastHistoryHole: TScriptCall;
}

/** Clients the scripts are already defined on (ioredis then runs them by EVALSHA, falling back to EVAL). */
const scripted = new WeakSet<object>();

function withScripts(client: TRedisClient): IScriptedClient {
  if (!scripted.has(client)) {
    client.defineCommand('roomcastHistoryPublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT });
    client.defineCommand('roomcastHistorySPublish', { numberOfKeys: 2, lua: SHARDED_PUBLISH_SCRIPT });
    client.defineCommand('roomcastHistoryRead', { numberOfKeys: 3, lua: READ_SCRIPT });
    client.defineCommand('roomcastHistoryRemove', { numberOfKeys: 3, lua: REMOVE_SCRIPT });
    client.defineCommand('roomcastHistoryHole', { numberOfKeys: 3, lua: HOLE_SCRIPT });
    scripted.add(client);
  }
  return client as unknown as IScriptedClient;
}

/** Thrown when the Redis connection is not ready: nothing was sent. */
export class RedisNotReadyError extends Error {
  constructor(status: string | undefined) {
    super(`Redis is not connected (status: ${status ?? 'none'})`);
    this.name = 'RedisNotReadyError';
  }
}

/**
 * Thrown when Redis ran a publication only after its bound (`redisCommandTimeout`): it stalled, and
 * the script published nothing. The caller's promise usually rejected already (ioredis' own timeout).
 */
export class RedisStalledError extends Error {
  constructor(timeout: number) {
    super(`Redis did not answer within ${timeout} ms; message not published`);
    this.name = 'RedisStalledError';
  }
}

/** What a publication got: its position (none when published without one), and a replaced policy. */
export interface IPublishOutcome {
  position?: IStreamPosition;
  /** The room's policy as stored before this publication, when it differed (`<metaTtl>:<ttl>:<size>`). */
  previousPolicy?: string;
}

/** ARGV placeholders of a publication without a policy (mode `c`: the stored policy decides). */
const NO_POLICY: IResolvedHistoryPolicy = { size: 1, ttl: 1, metaTtl: 1 };
/** How long a hole's marker is kept: every instance receives the publication well within it. */
const HOLE_MARKER_TTL = 60_000;
/** Round trips longer than this teach nothing about the clock offset. */
const SKEW_SAMPLE_MAX_RTT = 100;

/**
 * History over Redis: the position in a hash, the publications in a stream, both under the
 * room's hash tag (see keys.ts). `publish` assigns the offset, stores and PUBLISHes in one
 * script; `read` answers position and publications in one script. Commands are never queued
 * while Redis is down: they fail at once with `RedisNotReadyError`.
 */
export class RedisHistoryStore implements IHistoryStore {
  private readonly newEpoch = epochSource();

  /**
   * `pubSub`: the fleet's Pub/Sub, which decides the publish command and the key names (keys.ts).
   * `signer` (`busSecret` on): the published envelope is signed (see bus/signing.ts).
   */
  /** Redis time minus local time (ms), learned from publish replies; unknown before the first. */
  private skew?: number;

  /**
   * `commandTimeout` (ms, 0: none): the bound on a publication's wait, also enforced by the publish
   * script against Redis time, so a stalled Redis never publishes it later.
   */
  constructor(
    private readonly client: () => TRedisClient | undefined,
    private readonly pubSub: TPubSubKind = 'classic',
    private readonly signer?: BusSigner,
    private readonly commandTimeout = 0,
  ) {}

  /**
   * `envelopeHead` is the envelope's JSON without its closing brace and without `data`;
   * the script appends the data, the offset and the epoch. Without `policy` (a publisher that
   * keeps no history for the room) the publication is positioned by the policy stored with the
   * room's position when there is one, else published without a position (see redis-scripts.ts).
   * Rejects with `RedisStalledError` when Redis ran it after `commandTimeout` (nothing published).
   */
  async publish(
    room: string,
    policy: IResolvedHistoryPolicy | undefined,
    channel: string,
    envelopeHead: string,
    event: string,
    dataJson: string | undefined,
  ): Promise<IPublishOutcome> {
    const scripts = withScripts(this.ready());
    const run = this.pubSub === 'sharded' ? scripts.roomcastHistorySPublish : scripts.roomcastHistoryPublish;
    const keys = historyKeys(room, this.pubSub);
    // The script publishes head + data + position: the signature goes in front of the head, over
    // the envelope without the position (which only Redis knows).
    const head = this.signer
      ? this.signer.prefixFor(`${envelopeHead}${dataJson === undefined ? '' : `,"data":${dataJson}`}}`) +
        envelopeHead
      : envelopeHead;
    const sent = Date.now();
    // The deadline in Redis time: a script Redis gets to only after it (a stall) does nothing.
    const deadline =
      this.commandTimeout > 0 && this.skew !== undefined ? sent + this.skew + this.commandTimeout : 0;
    const reply = (await run.call(
      scripts,
      keys.meta,
      keys.stream,
      ...this.commonArgs(policy ?? NO_POLICY),
      channel,
      head,
      event,
      dataJson === undefined ? '0' : '1',
      dataJson ?? '',
      deadline,
      policy ? 'p' : 'c',
    )) as [string, string, string, string];
    const received = Date.now();
    // Clock offset to Redis, from quick round trips only (the error is at most half the round trip).
    if (received - sent <= SKEW_SAMPLE_MAX_RTT)
      this.skew = Number(reply[2]) - Math.round((sent + received) / 2);
    const offset = Number(reply[0]);
    if (offset < 0) throw new RedisStalledError(this.commandTimeout);
    return {
      position: offset === 0 ? undefined : { offset, epoch: reply[1] },
      previousPolicy: reply[3] === '' ? undefined : reply[3],
    };
  }

  async read(room: string, policy: IResolvedHistoryPolicy, query: IHistoryQuery): Promise<IHistoryPage> {
    const client = this.ready();
    const reply = (await withScripts(client).roomcastHistoryRead(
      ...this.readKeys(room, client),
      ...this.commonArgs(policy),
      query.since?.offset ?? -1,
      query.since?.epoch ?? '',
      query.limit,
      query.reverse ? '1' : '0',
    )) as unknown[];
    const publications: IStoredPublication[] = [];
    for (let i = 3; i < reply.length; i++) publications.push(fromFields(reply[i] as string[]));
    return {
      epoch: String(reply[0]),
      offset: Number(reply[1]),
      retained: Number(reply[2]) === 1,
      publications,
    };
  }

  /**
   * Moves the room's offset past a publication that went out without a position (see HOLE_SCRIPT).
   * `mark` names that publication alike on every instance that received it; the first makes the
   * hole. Resolves true when this call made it.
   */
  async markHole(room: string, policy: IResolvedHistoryPolicy, mark: string): Promise<boolean> {
    const keys = historyKeys(room, this.pubSub);
    const marker = `${keys.meta.slice(0, -':meta'.length)}:hole:${mark}`;
    const scripts = withScripts(this.ready());
    const made = await scripts.roomcastHistoryHole(
      keys.meta,
      keys.stream,
      marker,
      ...this.commonArgs(policy),
      HOLE_MARKER_TTL,
    );
    return Number(made) === 1;
  }

  /** Deletes the room's keys and starts a new generation in its slot (see redis-scripts.ts). */
  async remove(room: string): Promise<void> {
    const client = this.ready();
    await withScripts(client).roomcastHistoryRemove(...this.readKeys(room, client), this.newEpoch());
  }

  /** ARGV 1-4, the same for the publish and read scripts (see redis-scripts.ts). */
  private commonArgs(policy: IResolvedHistoryPolicy): Array<string | number> {
    // The policy text the publish script stores and compares: integers (validated in policy.ts).
    return [this.newEpoch(), policy.metaTtl, policy.ttl, policy.size];
  }

  /** KEYS of the read and remove scripts: meta, stream, generation. */
  private readKeys(room: string, client: TRedisClient): string[] {
    const keys = historyKeys(room, this.pubSub);
    return [keys.meta, keys.stream, generationKey(keys, client.isCluster)];
  }

  private ready(): TRedisClient {
    const client = this.client();
    if (client?.status !== 'ready') throw new RedisNotReadyError(client?.status);
    return client;
  }
}

/** A stream entry's field list `[o, offset, e, event, d?, data?]`. */
function fromFields(fields: string[]): IStoredPublication {
  const publication: IStoredPublication = { offset: 0, event: '', dataJson: undefined };
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1]!;
    if (fields[i] === 'o') publication.offset = Number(value);
    else if (fields[i] === 'e') publication.event = value;
    else if (fields[i] === 'd') publication.dataJson = value;
  }
  return publication;
}
