import type { BusSigner } from '../bus/signing.ts';
import type { TPubSubKind } from '../redis/pubsub-kind.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';
import { generationKey, historyKeys } from './keys.ts';
import { epochSource } from './policy.ts';
import { PUBLISH_SCRIPT, READ_SCRIPT, REMOVE_SCRIPT, SHARDED_PUBLISH_SCRIPT } from './redis-scripts.ts';
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
}

/** Clients the scripts are already defined on (ioredis then runs them by EVALSHA, falling back to EVAL). */
const scripted = new WeakSet<object>();

function withScripts(client: TRedisClient): IScriptedClient {
  if (!scripted.has(client)) {
    client.defineCommand('roomcastHistoryPublish', { numberOfKeys: 2, lua: PUBLISH_SCRIPT });
    client.defineCommand('roomcastHistorySPublish', { numberOfKeys: 2, lua: SHARDED_PUBLISH_SCRIPT });
    client.defineCommand('roomcastHistoryRead', { numberOfKeys: 3, lua: READ_SCRIPT });
    client.defineCommand('roomcastHistoryRemove', { numberOfKeys: 3, lua: REMOVE_SCRIPT });
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
  constructor(
    private readonly client: () => TRedisClient | undefined,
    private readonly pubSub: TPubSubKind = 'classic',
    private readonly signer?: BusSigner,
  ) {}

  /**
   * `envelopeHead` is the envelope's JSON without its closing brace and without `data`;
   * the script appends the data, the offset and the epoch.
   */
  async publish(
    room: string,
    policy: IResolvedHistoryPolicy,
    channel: string,
    envelopeHead: string,
    event: string,
    dataJson: string | undefined,
  ): Promise<IStreamPosition> {
    const scripts = withScripts(this.ready());
    const run = this.pubSub === 'sharded' ? scripts.roomcastHistorySPublish : scripts.roomcastHistoryPublish;
    const keys = historyKeys(room, this.pubSub);
    // The script publishes head + data + position: the signature goes in front of the head, over
    // the envelope without the position (which only Redis knows).
    const head = this.signer
      ? this.signer.prefixFor(`${envelopeHead}${dataJson === undefined ? '' : `,"data":${dataJson}`}}`) +
        envelopeHead
      : envelopeHead;
    const reply = (await run.call(
      scripts,
      keys.meta,
      keys.stream,
      ...this.commonArgs(policy),
      channel,
      head,
      event,
      dataJson === undefined ? '0' : '1',
      dataJson ?? '',
    )) as [string, string];
    return { offset: Number(reply[0]), epoch: reply[1] };
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

  /** Deletes the room's keys and starts a new generation in its slot (see redis-scripts.ts). */
  async remove(room: string): Promise<void> {
    const client = this.ready();
    await withScripts(client).roomcastHistoryRemove(...this.readKeys(room, client), this.newEpoch());
  }

  /** ARGV 1-4, the same for the publish and read scripts (see redis-scripts.ts). */
  private commonArgs(policy: IResolvedHistoryPolicy): Array<string | number> {
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
