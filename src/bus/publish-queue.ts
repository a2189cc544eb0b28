import type { Redis } from 'ioredis';
import type { ILogger } from '../common/types.ts';
import { isCluster, publishOn, type TPubSubKind } from '../redis/pubsub-kind.ts';
import type { TRedisClient } from '../redis/wait-ready.ts';

export interface IPublishQueueStats {
  /** Publications dropped because what waits for Redis had reached `maxPublishQueueBytes`. */
  publishQueueFull: number;
  /** Publications whose command failed after being sent (connection lost, `redisCommandTimeout`). */
  publishFailed: number;
  /** Gauge: publications waiting for Redis (queued here, or sent and not answered yet). */
  publishQueueMessages: number;
  /** Gauge: their size, in characters of the envelopes (UTF-16 code units: bytes for ASCII). */
  publishQueueBytes: number;
  /** Publications dropped because the connection was not ready (also when it went away within the turn). */
  droppedWhileDisconnected: number;
}

/** Messages per EVAL: Redis reads every argument before it runs the script. */
export const BATCH_MESSAGES = 1_000;
/** Characters per EVAL (a batch stops before the message that would pass it; one message always goes). */
export const BATCH_CHARS = 1024 * 1024;

/**
 * PUBLISHes its arguments two by two (channel, message), in order. Sent with EVAL, not EVALSHA:
 * a NOSCRIPT answer (after a restart) would have ioredis send the batch again later, behind
 * commands sent after it. Redis caches the compiled script by its hash either way.
 */
export const PUBLISH_MANY_SCRIPT = `for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end
return #ARGV / 2`;

export interface IPublishQueueOptions {
  /** The publishing connection (undefined or not ready: nothing is sent). */
  client: () => TRedisClient | undefined;
  pubSub: TPubSubKind;
  stats: IPublishQueueStats;
  logger: ILogger;
  /** Most characters waiting for Redis at once (`maxPublishQueueBytes`). */
  limit: number;
}

/**
 * Publishes the envelopes of one turn of the event loop together. `send()` and the other
 * publishers only queue (a string pushed on an array); at the end of the turn (a microtask) the
 * queue goes to Redis as few commands: on a single Redis node with classic Pub/Sub, one `EVAL` of
 * PUBLISH_MANY_SCRIPT per batch (up to BATCH_MESSAGES messages or BATCH_CHARS characters; a batch
 * of one is a plain PUBLISH); on a cluster, one PUBLISH / SPUBLISH per message, as before (each
 * goes to its own node). One connection, one command order: a publisher's messages reach Redis in
 * the order they were queued, and every other command of the publishing connection (history and
 * presence scripts, server commands) is sent only after the queue was flushed (see `flush()`).
 *
 * Bounded: what waits for Redis (queued, or sent and not answered yet) is at most `limit`
 * characters of envelopes; a publication that would pass it is dropped and counted
 * (`publishQueueFull`). A command that fails after being sent (the connection lost, or no answer
 * within `redisCommandTimeout`) is never sent again: its messages are counted in `publishFailed`
 * (Redis may have run it before the connection died, so some of them may still have arrived: at
 * most once, never twice).
 */
export class PublishQueue {
  private channels: string[] = [];
  private messages: string[] = [];
  /** Characters queued and not yet sent (part of `stats.publishQueueBytes`). */
  private queuedChars = 0;
  /** Plain publications sent and not answered yet (in this connection's life). */
  private plainInFlight = 0;
  /** Bumped when the connection is lost: answers to commands sent before no longer count. */
  private generation = 0;
  private scheduled = false;
  private lastFailureLog = 0;
  private readonly flushNow = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(private readonly opts: IPublishQueueOptions) {}

  /**
   * Takes `size` characters of the bound for a publication sent elsewhere (a history script):
   * returns the ticket to give back with `release`, or -1 (counted as dropped) when that would pass
   * the limit.
   */
  admit(size: number): number {
    const stats = this.opts.stats;
    // One message always fits an empty queue (a limit below maxEnvelopeBytes still lets each through alone).
    if (stats.publishQueueMessages > 0 && stats.publishQueueBytes + size > this.opts.limit) {
      stats.publishQueueFull++;
      return -1;
    }
    stats.publishQueueBytes += size;
    stats.publishQueueMessages++;
    return this.generation;
  }

  /** Gives back what `admit` took (nothing when the connection was lost since: see `connectionLost`). */
  release(size: number, ticket: number, messages = 1): void {
    if (ticket !== this.generation) return;
    const stats = this.opts.stats;
    stats.publishQueueBytes -= size;
    stats.publishQueueMessages -= messages;
  }

  /**
   * The publishing connection closed. Commands in flight are not sent again, and ioredis may never
   * settle them (it drops them on reconnect when `redisCommandTimeout` is 0): the plain publications
   * among them are counted as failed now (`publishFailed`; Redis may have run some before it died)
   * and the gauges keep only what is still queued here.
   */
  connectionLost(): void {
    const stats = this.opts.stats;
    stats.publishFailed += this.plainInFlight;
    this.plainInFlight = 0;
    stats.publishQueueBytes = this.queuedChars;
    stats.publishQueueMessages = this.messages.length;
    this.generation++;
  }

  /**
   * Publishes, or queues for the end of the turn; false when it was dropped (counted). With nothing
   * queued and nothing in flight (a quiet instance) the publication goes out at once as a plain
   * PUBLISH, as it would alone; otherwise it joins the turn's batch.
   */
  push(channel: string, message: string): boolean {
    if (this.admit(message.length) < 0) return false;
    if (this.messages.length === 0 && this.plainInFlight === 0) {
      const client = this.opts.client();
      if (client?.status === 'ready') {
        this.plainInFlight++;
        this.sendOne(client, channel, message, this.generation);
        return true;
      }
    }
    this.channels.push(channel);
    this.messages.push(message);
    this.queuedChars += message.length;
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushNow);
    }
    return true;
  }

  /** Sends what is queued now (before any other command of the publishing connection). */
  flush(): void {
    const count = this.messages.length;
    if (count === 0) return;
    const channels = this.channels;
    const messages = this.messages;
    const chars = this.queuedChars;
    this.channels = [];
    this.messages = [];
    this.queuedChars = 0;
    this.plainInFlight += count;
    const ticket = this.generation;
    const client = this.opts.client();
    if (client?.status !== 'ready') {
      // The connection went away within the turn: dropped like any publication while disconnected.
      this.plainInFlight -= count;
      this.release(chars, ticket, count);
      this.opts.stats.droppedWhileDisconnected += count;
      return;
    }
    if (this.opts.pubSub === 'sharded' || isCluster(client)) {
      for (let i = 0; i < count; i++) this.sendOne(client, channels[i]!, messages[i]!, ticket);
      return;
    }
    let start = 0;
    while (start < count) {
      let end = start;
      let size = 0;
      while (end < count && end - start < BATCH_MESSAGES) {
        const length = messages[end]!.length;
        if (end > start && size + length > BATCH_CHARS) break;
        size += length;
        end++;
      }
      if (end - start === 1) this.sendOne(client, channels[start]!, messages[start]!, ticket);
      else this.sendBatch(client as Redis, channels, messages, start, end, size, ticket);
      start = end;
    }
  }

  private sendOne(client: TRedisClient, channel: string, message: string, ticket: number): void {
    const size = message.length;
    publishOn(this.opts.pubSub, client, channel, message).then(
      () => this.answered(1, size, ticket),
      (error: unknown) => this.failed(1, size, ticket, error),
    );
  }

  private sendBatch(
    client: Redis,
    channels: string[],
    messages: string[],
    start: number,
    end: number,
    size: number,
    ticket: number,
  ): void {
    const args: string[] = new Array((end - start) * 2);
    for (let i = start, at = 0; i < end; i++, at += 2) {
      args[at] = channels[i]!;
      args[at + 1] = messages[i]!;
    }
    const count = end - start;
    client.eval(PUBLISH_MANY_SCRIPT, 0, ...args).then(
      () => this.answered(count, size, ticket),
      (error: unknown) => this.failed(count, size, ticket, error),
    );
  }

  private answered(count: number, size: number, ticket: number): void {
    if (ticket !== this.generation) return; // counted when the connection was lost
    this.plainInFlight -= count;
    this.release(size, ticket, count);
  }

  private failed(count: number, size: number, ticket: number, error: unknown): void {
    if (ticket !== this.generation) return; // counted when the connection was lost
    this.plainInFlight -= count;
    this.release(size, ticket, count);
    this.opts.stats.publishFailed += count;
    const now = Date.now();
    if (now - this.lastFailureLog < 5_000) return; // a failing Redis must not flood the log
    this.lastFailureLog = now;
    this.opts.logger.warn(
      `Redis publish failed; ${count} message(s) dropped (counted in publishFailed)`,
      error instanceof Error ? error.message : String(error),
    );
  }
}
