// `npm run announce -- [--room <room> | --user <name> | --all] "text"`
//
// Pushes a system announcement to the running demo instance(s) from a separate
// process, through Redis only (WebSocketEmitter): no HTTP call, no WebSocket.
// Needs REDIS_URL, the same one the instances were started with.

import { RedisHelper, silentLogger, WebSocketEmitter } from '../../src/index.ts';
import { parseRedisUrl, redisOptionsFromUrl } from './config.ts';
import { chatRoomHistory, DemoEvents, type IAnnouncement } from './protocol.ts';

export type TAnnounceTarget =
  | { kind: 'room'; room: string }
  | { kind: 'user'; userId: string }
  | { kind: 'all' };

export interface IAnnounceCommand {
  target: TAnnounceTarget;
  text: string;
}

const USAGE = `usage: npm run announce -- [--room <room> | --user <name> | --all] "text"
  --room <room>   everyone in that room (default: --room lobby)
  --user <name>   every tab of that person
  --all           everyone connected, on every instance
  REDIS_URL must point at the Redis the demo instances share.`;

/** Parses the command line; throws with the usage text when it does not make sense. */
export function parseAnnounceArgs(args: readonly string[]): IAnnounceCommand {
  const targets: TAnnounceTarget[] = [];
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--room' || arg === '--user') {
      const value = args[++i];
      if (!value || value.startsWith('--')) throw new Error(`${arg} needs a value\n${USAGE}`);
      targets.push(arg === '--room' ? { kind: 'room', room: value } : { kind: 'user', userId: value });
    } else if (arg === '--all') {
      targets.push({ kind: 'all' });
    } else if (arg === '--help' || arg === '-h') {
      throw new Error(USAGE);
    } else {
      words.push(arg);
    }
  }
  if (targets.length > 1) throw new Error(`choose one of --room, --user, --all\n${USAGE}`);
  const text = words.join(' ').trim();
  if (!text) throw new Error(`nothing to announce\n${USAGE}`);
  return { target: targets[0] ?? { kind: 'room', room: 'lobby' }, text };
}

export async function announce(command: IAnnounceCommand, redisUrl: string): Promise<string> {
  const redis = new RedisHelper({
    name: 'announce',
    ...redisOptionsFromUrl(parseRedisUrl(redisUrl)),
    autoConnect: false,
    maxRetry: 3,
    logger: silentLogger,
  });
  const emitter = new WebSocketEmitter({
    identifier: 'announce-cli',
    redisConnection: redis,
    logger: silentLogger,
    redisReadyTimeout: 5_000,
    // The same policy as the servers': an announcement to a room gets a position and is kept,
    // so a page that was away when it was sent still gets it when it reconnects.
    historyFn: chatRoomHistory,
  });
  const data: IAnnouncement = { text: command.text, from: 'announce CLI', at: new Date().toISOString() };
  const event = DemoEvents.ANNOUNCEMENT;
  const { target } = command;
  try {
    await emitter.configure();
    if (target.kind === 'room') await emitter.toRoom({ room: target.room, event, data });
    else if (target.kind === 'user') await emitter.toUser({ userId: target.userId, event, data });
    else await emitter.broadcast({ event, data });
  } finally {
    await emitter.shutdown();
    await redis.disconnect();
  }
  return target.kind === 'room'
    ? `room "${target.room}"`
    : target.kind === 'user'
      ? `user "${target.userId}"`
      : 'everyone';
}

if (import.meta.main) {
  try {
    const command = parseAnnounceArgs(process.argv.slice(2));
    const redisUrl = process.env.REDIS_URL;
    if (!redisUrl) {
      throw new Error(
        'REDIS_URL is not set. The announce CLI reaches the demo through Redis, so start the demo with\n' +
          'REDIS_URL=redis://127.0.0.1:6379 npm start, and run this command with the same REDIS_URL.',
      );
    }
    const reached = await announce(command, redisUrl);
    console.log(`announced to ${reached}: ${command.text}`);
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
}
