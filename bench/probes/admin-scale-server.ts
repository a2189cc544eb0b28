// One instance of the admin scale probe (bench/probes/admin-scale.ts), run as a child process driven
// over Bun IPC: an application with the WebSocket component (fleet on, presence for the probe's
// rooms, history for a few of them, the admin UI on /admin) and the HTTP API component on /api.
//
// Commands: `start` (Redis port, identifier, the admin and API keys; answers the port), `sample`
// (CPU time and event-loop delay since the last sample), `exit`. Exits by itself when the
// orchestrator is gone (serveParent).

import type { ILogger } from '../../src/common/types.ts';
import { HttpApiBindingKeys, HttpApiComponent } from '../../src/core/http-api/component.ts';
import { BaseApplication, WebSocketBindingKeys, WebSocketComponent } from '../../src/core/index.ts';
import { RedisHelper } from '../../src/redis/redis-helper.ts';
import { serveParent } from '../servers/control.ts';

export interface IAdminScaleStart {
  cmd: 'start';
  redisPort: number;
  identifier: string;
  adminKey: string;
  apiKey: string;
}

export type TAdminScaleCommand = IAdminScaleStart | { cmd: 'sample' } | { cmd: 'exit' };

export interface IAdminScaleSample {
  /** process.cpuUsage() since the previous sample (µs). */
  userUs: number;
  systemUs: number;
  /** Wall time since the previous sample (ms). */
  wallMs: number;
  /** How late the 10 ms probe timer fired, over the samples since the previous sample (ms). */
  lagMeanMs: number;
  lagP99Ms: number;
  lagMaxMs: number;
  rssBytes: number;
}

export interface IAdminScaleReply {
  ok: boolean;
  error?: string;
  port?: number;
  sample?: IAdminScaleSample;
}

/** Rooms that keep presence: every room the probe's clients join (not the default rooms). */
export const isProbeRoom = (room: string): boolean =>
  room === 'huge' || room.startsWith('medium-') || room.startsWith('small-');
/** Rooms that keep a history: the huge room, the medium rooms and one small one. */
export const keepsHistory = (room: string): boolean =>
  room === 'huge' || room.startsWith('medium-') || room === 'small-0';

const quiet = () => {};
const logger: ILogger = {
  debug: quiet,
  info: quiet,
  warn: (...args: unknown[]) => console.error('[admin-scale warn]', ...args),
  error: (...args: unknown[]) => console.error('[admin-scale error]', ...args),
  isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
};

class ProbeInstance extends BaseApplication {
  constructor(private readonly config: IAdminScaleStart) {
    super({ name: 'admin-scale', port: 0, host: '127.0.0.1', logger, handleSignals: false });
  }

  override preConfigure(): void {
    const { config } = this;
    const bind = (key: string, value: unknown) => this.bind({ key }).toValue(value);
    bind(
      WebSocketBindingKeys.REDIS_CONNECTION,
      new RedisHelper({
        name: 'admin-scale',
        host: '127.0.0.1',
        port: config.redisPort,
        autoConnect: false,
        logger,
      }),
    );
    bind(WebSocketBindingKeys.AUTHENTICATE_HANDLER, (data: { token?: string; user?: string }) =>
      data.token === 'ok' && typeof data.user === 'string' ? { userId: data.user } : null,
    );
    bind(WebSocketBindingKeys.VALIDATE_ROOM_HANDLER, ({ rooms }: { rooms: string[] }) => rooms);
    bind(WebSocketBindingKeys.PRESENCE_HANDLER, ({ room }: { room: string }) => isProbeRoom(room));
    bind(WebSocketBindingKeys.HISTORY_HANDLER, ({ room }: { room: string }) =>
      keepsHistory(room) ? { size: 100, ttl: 600_000 } : null,
    );
    bind(WebSocketBindingKeys.SERVER_OPTIONS, {
      identifier: config.identifier,
      // The load clients send no application heartbeats (as in the capacity run).
      heartbeatTimeout: 600_000,
      // Every load client comes from a handful of loopback addresses.
      connectionRate: false,
      fleet: true,
      adminUi: { keys: [{ key: config.adminKey, operator: 'probe' }] },
    });
    bind(HttpApiBindingKeys.OPTIONS, { keys: [config.apiKey], rate: false });
    this.component(WebSocketComponent);
    this.component(HttpApiComponent);
  }
}

// Event-loop delay: a 10 ms timer, and how late each tick came.
const TICK_MS = 10;
let lags: number[] = [];
let lastTick = performance.now();
setInterval(() => {
  const now = performance.now();
  lags.push(Math.max(0, now - lastTick - TICK_MS));
  lastTick = now;
}, TICK_MS);

let lastCpu = process.cpuUsage();
let lastWall = performance.now();

function sample(): IAdminScaleSample {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  const taken = lags.sort((a, b) => a - b);
  lags = [];
  const result: IAdminScaleSample = {
    userUs: cpu.user - lastCpu.user,
    systemUs: cpu.system - lastCpu.system,
    wallMs: wall - lastWall,
    lagMeanMs: taken.length === 0 ? 0 : taken.reduce((a, b) => a + b, 0) / taken.length,
    lagP99Ms: taken.length === 0 ? 0 : taken[Math.min(taken.length - 1, Math.floor(taken.length * 0.99))]!,
    lagMaxMs: taken.length === 0 ? 0 : taken[taken.length - 1]!,
    rssBytes: process.memoryUsage().rss,
  };
  lastCpu = cpu;
  lastWall = wall;
  return result;
}

async function handle(command: TAdminScaleCommand): Promise<IAdminScaleReply> {
  switch (command.cmd) {
    case 'start': {
      const { port } = await new ProbeInstance(command).start();
      sample(); // the next sample counts from here
      return { ok: true, port };
    }
    case 'sample':
      return { ok: true, sample: sample() };
    case 'exit':
      setTimeout(() => process.exit(0), 10);
      return { ok: true };
  }
}

serveParent<TAdminScaleCommand>(handle);
