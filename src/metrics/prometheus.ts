import { createRequire } from 'node:module';
import type { Histogram, Registry } from 'prom-client';
import type { IRedisBusStats } from '../bus/cross-instance-bus.ts';
import { HISTORY_MISMATCHES, type ServerCounters, type TRecoveryOutcome } from './counters.ts';

/** Options of the helper's `metrics` option. */
export interface IMetricsOptions {
  /** Where the metrics are registered. Default: a registry of the helper's own. */
  registry?: Registry;
  /** Prefix of every metric name. Default `roomcast_`. */
  prefix?: string;
  /**
   * Also register prom-client's default process and runtime metrics (`collectDefaultMetrics`: CPU,
   * resident memory, open file descriptors, event-loop lag, heap, GC) in the same registry and with
   * the same prefix. Default `false`. Leave it off when the application already collects them in
   * the registry it passes, since a metric name may be registered only once per registry.
   */
  defaultMetrics?: boolean;
}

/** What the exporter reads at scrape time. */
export interface IMetricsSources {
  counters: ServerCounters;
  /** Index sizes of this instance. */
  sizes(): { clients: number; authenticated: number; users: number; rooms: number };
  /** Whether the helper runs over Redis (known at construction): without it the Redis gauges are not registered. */
  redis: boolean;
  /** Cross-instance bus: undefined in single-instance mode. */
  bus(): (IRedisBusStats & { connected: boolean }) | undefined;
  /** True while `shutdown()` drains the clients (and afterwards). */
  draining(): boolean;
  /** Rooms with a history recovery in progress; undefined (reported as 0) without `historyFn`. */
  recovering(): number | undefined;
  /** Connections whose credentials have an expiry (a refresh clock running). */
  expiring(): number;
}

/**
 * prom-client, loaded the first time metrics are turned on: a helper without `metrics` never pays
 * for it (start-up time, a larger baseline heap). Synchronous, so construction stays synchronous.
 */
let promClient: typeof import('prom-client') | undefined;
function loadPromClient(): typeof import('prom-client') {
  promClient ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client');
  return promClient;
}

export const DEFAULT_METRICS_PREFIX = 'roomcast_';

const RECOVERY_OUTCOMES: readonly TRecoveryOutcome[] = [
  'recovered',
  'not_retained',
  'overflow',
  'unavailable',
];

/**
 * The helper's Prometheus metrics (prom-client). Counters copy the running
 * totals of `ServerCounters` when scraped, gauges read the indexes, and only the
 * authentication-time histogram is fed as events happen.
 */
export class PrometheusMetrics {
  readonly registry: Registry;
  private readonly authDuration: Histogram<string>;
  private readonly busLatency: Histogram<string>;

  constructor(opts: IMetricsOptions | true, sources: IMetricsSources) {
    const { Counter, Gauge, Histogram, Registry } = loadPromClient();
    const options = opts === true ? {} : opts;
    const prefix = options.prefix ?? DEFAULT_METRICS_PREFIX;
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
      throw new Error(
        `[WebSocketServerHelper] metrics.prefix ${JSON.stringify(prefix)} is not a valid metric name prefix`,
      );
    }
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    if (options.defaultMetrics === true)
      loadPromClient().collectDefaultMetrics({ register: registry, prefix });
    const registers = [registry];
    const { counters } = sources;

    const totals = (
      name: string,
      help: string,
      read: () => number | Array<[Record<string, string | number>, number]>,
      labelNames: string[] = [],
    ) =>
      new Counter({
        name: prefix + name,
        help,
        labelNames,
        registers,
        // The totals live in ServerCounters; a scrape copies them in.
        collect() {
          const value = read();
          this.reset();
          if (typeof value === 'number') this.inc(value);
          else for (const [labels, total] of value) this.inc(labels, total);
        },
      });
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name: prefix + name,
        help,
        registers,
        collect() {
          const value = read();
          if (value !== undefined) this.set(value);
        },
      });

    gauge(
      'connections',
      'Open WebSocket connections on this instance, authenticated or not.',
      () => sources.sizes().clients,
    );
    gauge(
      'connections_authenticated',
      'Authenticated connections on this instance.',
      () => sources.sizes().authenticated,
    );
    gauge('users', 'Distinct users connected to this instance.', () => sources.sizes().users);
    gauge(
      'rooms',
      'Rooms with at least one member on this instance (id rooms included).',
      () => sources.sizes().rooms,
    );
    totals(
      'connections_opened_total',
      'WebSocket connections accepted (opened).',
      () => counters.connectionsOpened,
    );
    totals(
      'connections_closed_total',
      'WebSocket connections closed, by close code.',
      () => [...counters.closedByCode].map(([code, n]) => [{ code }, n]),
      ['code'],
    );
    totals(
      'auth_total',
      'Authentication attempts by outcome.',
      () => [
        [{ outcome: 'accepted' }, counters.authAccepted],
        [{ outcome: 'refused' }, counters.authRefused],
        [{ outcome: 'error' }, counters.authErrors],
        [{ outcome: 'timeout' }, counters.authTimeouts],
      ],
      ['outcome'],
    );
    this.authDuration = new Histogram({
      name: `${prefix}auth_duration_seconds`,
      help: 'Time from an authenticate frame to its answer (authenticateFn and handshake).',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
      registers,
    });
    totals('inbound_frames_total', 'Frames received from clients.', () => counters.inboundFrames);
    totals(
      'inbound_bytes_total',
      'Bytes received from clients (UTF-8 size of text frames).',
      () => counters.inboundBytes,
    );
    totals(
      'inbound_refused_total',
      'Frames and requests refused by the limits, by error code.',
      () => [...counters.refusedByCode].map(([code, n]) => [{ code }, n]),
      ['code'],
    );
    totals(
      'deliveries_total',
      'Outbound writes: native = one Bun publish of a message (Bun fans it out to every subscriber in C++), socket = one frame written to one socket.',
      () => [
        [{ path: 'native' }, counters.nativePublishes],
        [{ path: 'socket' }, counters.socketWrites],
      ],
      ['path'],
    );
    totals(
      'encrypted_deliveries_total',
      'Messages handed to the outbound transformer, one per encrypted recipient.',
      () => counters.encryptedDeliveries,
    );
    totals(
      'messages_dropped_total',
      'Messages not delivered, by reason.',
      () => [
        [{ reason: 'backpressure' }, counters.droppedBackpressure],
        [{ reason: 'transformer_error' }, counters.droppedTransformer],
        [{ reason: 'not_admitted' }, counters.droppedUnadmitted],
        [{ reason: 'redis_disconnected' }, sources.bus()?.droppedWhileDisconnected ?? 0],
        [{ reason: 'publish_queue_full' }, sources.bus()?.publishQueueFull ?? 0],
        [{ reason: 'redis_publish_failed' }, sources.bus()?.publishFailed ?? 0],
      ],
      ['reason'],
    );
    totals(
      'bus_published_total',
      'Envelopes published to Redis for the other instances.',
      () => sources.bus()?.published ?? 0,
    );
    totals(
      'bus_received_total',
      'Envelopes received from Redis and delivered here.',
      () => sources.bus()?.received ?? 0,
    );
    totals(
      'bus_malformed_total',
      'Messages from Redis that failed validation (not JSON, wrong fields, too deeply nested, aimed at an internal topic).',
      () => sources.bus()?.malformed ?? 0,
    );
    totals(
      'bus_rejected_total',
      'Bus messages dropped for a reason other than their shape: oversize (over maxEnvelopeBytes, received or about to be published), unauthenticated (busSecret on, no valid signature), deliver_refused (too many relayed acknowledged messages waiting).',
      () => {
        const bus = sources.bus();
        return [
          [{ reason: 'oversize' }, bus?.oversize ?? 0],
          [{ reason: 'unauthenticated' }, bus?.unauthenticated ?? 0],
          [{ reason: 'deliver_refused' }, bus?.deliverRefused ?? 0],
        ];
      },
      ['reason'],
    );
    totals(
      'redis_reconnects_total',
      'Reconnection attempts of the Redis connections.',
      () => sources.bus()?.reconnects ?? 0,
    );
    if (sources.redis) {
      gauge(
        'bus_publish_queue_messages',
        'Publications waiting for Redis (queued for the turn, or sent and not answered yet); bounded by maxPublishQueueBytes.',
        () => sources.bus()?.publishQueueMessages ?? 0,
      );
      gauge(
        'bus_publish_queue_bytes',
        'Their size in characters of the envelopes (maxPublishQueueBytes is the limit).',
        () => sources.bus()?.publishQueueBytes ?? 0,
      );
      gauge(
        'redis_connected',
        '1 while both Redis connections are ready, 0 otherwise; absent without Redis.',
        () => (sources.bus()?.connected ? 1 : 0),
      );
    }
    this.busLatency = new Histogram({
      name: `${prefix}bus_latency_seconds`,
      help: 'Age of envelopes received from other instances (receiver clock minus publisher clock; needs metrics on the publisher too).',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    totals(
      'history_published_total',
      'Publications to history rooms started on this instance.',
      () => counters.historyPublished,
    );
    totals(
      'history_publish_failed_total',
      'History publications whose Redis script failed after being sent (the message was dropped).',
      () => sources.bus()?.historyFailed ?? 0,
    );
    totals(
      'history_publish_timed_out_total',
      'History publications dropped because Redis did not answer within redisCommandTimeout (stalled).',
      () => sources.bus()?.historyTimedOut ?? 0,
    );
    totals(
      'history_policy_mismatches_total',
      "Signs that instances or emitters disagree on a room's history policy, by kind.",
      () => HISTORY_MISMATCHES.map((kind) => [{ kind }, counters.historyMismatches.get(kind) ?? 0]),
      ['kind'],
    );
    totals(
      'recoveries_total',
      'History recoveries on join (one per room asked with since), by outcome.',
      () => RECOVERY_OUTCOMES.map((outcome) => [{ outcome }, counters.recoveriesByOutcome.get(outcome) ?? 0]),
      ['outcome'],
    );
    gauge('recovering_rooms', 'Rooms with a history recovery in progress (0 without historyFn).', () =>
      sources.recovering(),
    );
    totals(
      'token_refresh_total',
      'Expiring credentials: refresh requests sent, refreshes accepted or failed, expiries reached.',
      () => [
        [{ outcome: 'requested' }, counters.refreshRequested],
        [{ outcome: 'accepted' }, counters.refreshAccepted],
        [{ outcome: 'failed' }, counters.refreshFailed],
        [{ outcome: 'expired' }, counters.refreshExpired],
      ],
      ['outcome'],
    );
    gauge('connections_expiring', 'Connections whose credentials carry an expiry.', () => sources.expiring());
    totals(
      'upgrades_refused_total',
      'Upgrade requests refused before a socket existed, by reason (origin, draining, rate).',
      () => [...counters.upgradesRefused].map(([reason, n]) => [{ reason }, n]),
      ['reason'],
    );
    gauge('draining', '1 from the start of a drain (shutdown) on, 0 otherwise.', () =>
      sources.draining() ? 1 : 0,
    );
  }

  /** Records the age of an envelope received from another instance (ms; clock skew clamps at 0). */
  observeBusLatency(ms: number): void {
    this.busLatency.observe(Math.max(0, ms) / 1000);
  }

  /** Records how long one authentication took (ms). */
  observeAuth(ms: number): void {
    this.authDuration.observe(ms / 1000);
  }

  /** The text exposition of every metric in the registry. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
