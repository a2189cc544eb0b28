import { z } from '@hono/zod-openapi';
import { WebSocketLimits } from '../common/constants.ts';
import { FLEET_MAX_INSTANCES } from '../fleet/reader.ts';
import { HTTP_API_ERROR_CODES } from './errors.ts';

/** Most client ids in one `exclude`. */
export const MAX_EXCLUDE = 1_000;
/** Longest event name, client id or user id the API takes. */
export const MAX_NAME_LENGTH = 256;
/** Most presence members one answer lists (`limit`'s maximum). */
export const MAX_PRESENCE_LIMIT = 10_000;
/** Most rooms `GET /rooms/top` answers. */
export const MAX_TOP_ROOMS = 100;

const RESERVED = WebSocketLimits.RESERVED_ROOM_PREFIX;

export const RoomName = z
  .string()
  .min(1)
  .max(WebSocketLimits.MAX_ROOM_NAME_LENGTH)
  .refine((room) => !room.startsWith(RESERVED), { message: `must not start with "${RESERVED}"` })
  .openapi({
    description: `A room name: 1-256 characters, not starting with "${RESERVED}"`,
    example: 'chat',
  });

const Id = (what: string) =>
  z.string().min(1).max(MAX_NAME_LENGTH).openapi({ description: what, example: 'user-42' });

export const EventName = z
  .string()
  .min(1)
  .max(MAX_NAME_LENGTH)
  .refine((event) => !event.startsWith('ws:'), {
    message: 'must not start with "ws:" (reserved for the protocol)',
  })
  .openapi({ description: 'The event the clients receive (not starting with "ws:")', example: 'news' });

/** Any JSON value; what the clients receive as `data`. */
const Data = z
  .unknown()
  .openapi({ description: 'Any JSON value: the `data` the clients receive', example: { text: 'hi' } });

const Exclude = z
  .array(Id('A client id'))
  .max(MAX_EXCLUDE)
  .optional()
  .openapi({ description: `Client ids that must not receive it (at most ${MAX_EXCLUDE})` });

export const Position = z
  .object({ offset: z.number().int().min(0), epoch: z.string() })
  .openapi('Position', { description: "A position in a room's history stream" });

export const PublishRoomBody = z
  .object({ room: RoomName, event: EventName, data: Data, exclude: Exclude })
  .strict()
  .openapi('PublishRoom');
export const PublishUserBody = z
  .object({ userId: Id('A user id'), event: EventName, data: Data, exclude: Exclude })
  .strict()
  .openapi('PublishUser');
export const PublishClientBody = z
  .object({ clientId: Id('A client id'), event: EventName, data: Data })
  .strict()
  .openapi('PublishClient');
export const BroadcastBody = z
  .object({ event: EventName, data: Data, exclude: Exclude })
  .strict()
  .openapi('Broadcast');

const oneTarget = (body: { clientId?: string; userId?: string }) =>
  (body.clientId === undefined) !== (body.userId === undefined);

/** Exactly one of `clientId` and `userId`. */
const target = <T extends z.ZodRawShape>(shape: T) =>
  z
    .object({
      clientId: Id('One connection').optional(),
      userId: Id('Every connection of a user').optional(),
      ...shape,
    })
    .strict()
    .refine((body) => oneTarget(body as { clientId?: string; userId?: string }), {
      message: 'give exactly one of clientId and userId',
    });

export const DisconnectBody = target({
  code: z
    .number()
    .int()
    .refine((code) => code === 1000 || (code >= 3000 && code <= 4999), {
      message: 'must be 1000 or 3000-4999',
    })
    .optional()
    .openapi({ description: 'Close code: 1000 or 3000-4999 (default 1000)', example: 4010 }),
  reason: z.string().max(120).optional().openapi({ description: 'Close reason (at most 120 characters)' }),
  reconnect: z.boolean().optional().openapi({
    description: 'false: close with 4008, after which the SDK does not reconnect (give no code then)',
  }),
}).openapi('Disconnect');

export const RoomsCommandBody = target({
  rooms: z.array(RoomName).min(1).max(WebSocketLimits.MAX_ROOMS_PER_REQUEST),
}).openapi('RoomsCommand');

export const RoomBody = z.object({ room: RoomName }).strict().openapi('Room');

export const HistoryQuery = z
  .object({
    room: RoomName,
    limit: z.coerce
      .number()
      .int()
      .min(0)
      .max(WebSocketLimits.MAX_HISTORY_LIMIT)
      .optional()
      .openapi({
        description: `Most publications (default and maximum ${WebSocketLimits.MAX_HISTORY_LIMIT})`,
      }),
    reverse: z.enum(['true', 'false']).optional().openapi({ description: 'Newest first' }),
    sinceOffset: z.coerce
      .number()
      .int()
      .min(0)
      .optional()
      .openapi({ description: 'Only after this offset (with sinceEpoch)' }),
    sinceEpoch: z.string().min(1).max(MAX_NAME_LENGTH).optional(),
  })
  .refine((q) => (q.sinceOffset === undefined) === (q.sinceEpoch === undefined), {
    message: 'give both sinceOffset and sinceEpoch, or neither',
  });

export const PresenceQuery = z.object({
  room: RoomName,
  limit: z.coerce
    .number()
    .int()
    .min(0)
    .max(MAX_PRESENCE_LIMIT)
    .optional()
    .openapi({
      description: `Most members listed (default 1 000, maximum ${MAX_PRESENCE_LIMIT}); total counts them all`,
    }),
});
export const PresenceStatsQuery = z.object({ room: RoomName });

export const TopRoomsQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_TOP_ROOMS)
    .optional()
    .openapi({ description: `How many rooms (default 10, maximum ${MAX_TOP_ROOMS})` }),
});

export const InstancesQuery = z.object({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(FLEET_MAX_INSTANCES)
    .optional()
    .openapi({ description: `Most instances listed (default and maximum ${FLEET_MAX_INSTANCES})` }),
});

// ------------------------------------------------------------------ answers

export const ErrorAnswer = z
  .object({
    error: z.object({ code: z.enum(HTTP_API_ERROR_CODES as [string, ...string[]]), message: z.string() }),
  })
  .openapi('Error');

export const PublishedAnswer = z
  .object({
    position: Position.nullable().openapi({
      description: "The publication's position when the room keeps history, else null",
    }),
  })
  .openapi('Published');
export const DoneAnswer = z.object({ done: z.literal(true) }).openapi('Done');
export const CommandAnswer = z
  .object({
    instances: z.number().int().openapi({ description: 'Server instances the command was handed to' }),
  })
  .openapi('CommandSent');

export const FleetRoom = z.object({ room: z.string(), members: z.number().int() }).openapi('FleetRoom');
export const FleetInstance = z
  .object({
    id: z.string(),
    identifier: z.string(),
    version: z.string(),
    startedAt: z.number(),
    updatedAt: z.number(),
    expiresAt: z.number(),
    connections: z.number().int(),
    authenticated: z.number().int(),
    users: z.number().int(),
    rooms: z.number().int(),
    rates: z.object({
      inboundFrames: z.number(),
      publishes: z.number(),
      socketWrites: z.number(),
      connectionsOpened: z.number(),
    }),
    topRooms: z.array(FleetRoom),
    draining: z.boolean(),
  })
  .openapi('FleetInstance');
export const InstancesAnswer = z
  .object({
    instances: z.array(FleetInstance),
    totals: z.object({
      connections: z.number().int(),
      authenticated: z.number().int(),
      instances: z.number().int(),
    }),
  })
  .openapi('Instances');
export const TopRoomsAnswer = z
  .object({ rooms: z.array(FleetRoom), instances: z.number().int() })
  .openapi('TopRooms');

export const PresenceMember = z
  .object({ clientId: z.string(), userId: z.string().optional(), info: z.unknown().optional() })
  .openapi('PresenceMember');
export const PresenceAnswer = z
  .object({ room: z.string(), total: z.number().int(), members: z.array(PresenceMember) })
  .openapi('Presence');
export const PresenceStatsAnswer = z
  .object({ room: z.string(), clients: z.number().int(), users: z.number().int() })
  .openapi('PresenceStats');
export const HistoryAnswer = z
  .object({
    publications: z.array(
      z.object({ offset: z.number().int(), event: z.string(), data: z.unknown().optional() }),
    ),
    offset: z.number().int(),
    epoch: z.string(),
  })
  .openapi('History');

export const ConnectionsQuery = z
  .object({
    clientId: Id('One connection').optional(),
    userId: Id('Every connection of a user').optional(),
  })
  .refine((q) => (q.clientId === undefined) !== (q.userId === undefined), {
    message: 'give exactly one of clientId and userId',
  });
export const ConnectionInfo = z
  .object({
    clientId: z.string(),
    userId: z.string().optional(),
    serverId: z.string().openapi({ description: 'The instance holding it (its `id` in /instances)' }),
    rooms: z.array(z.string()).openapi({ description: 'Its first 10 rooms (its own id room left out)' }),
    roomCount: z.number().int(),
    encrypted: z.boolean(),
    connectedAt: z.number(),
    lastActivity: z.number(),
  })
  .openapi('ConnectionInfo');
export const ConnectionsAnswer = z
  .object({
    connections: z.array(ConnectionInfo),
    instances: z.number().int().openapi({ description: 'Instances that answered' }),
    complete: z.boolean().openapi({ description: 'Every instance answered within the wait (1 s)' }),
  })
  .openapi('Connections');

// ------------------------------------------------------------------ batch

/** The operations a batch may hold, each with the body of its own route. */
export const BatchItem = z
  .discriminatedUnion('op', [
    z.object({ op: z.literal('publishRoom'), body: PublishRoomBody }).strict(),
    z.object({ op: z.literal('publishUser'), body: PublishUserBody }).strict(),
    z.object({ op: z.literal('publishClient'), body: PublishClientBody }).strict(),
    z.object({ op: z.literal('broadcast'), body: BroadcastBody }).strict(),
    z.object({ op: z.literal('disconnect'), body: DisconnectBody }).strict(),
    z.object({ op: z.literal('join'), body: RoomsCommandBody }).strict(),
    z.object({ op: z.literal('leave'), body: RoomsCommandBody }).strict(),
    z.object({ op: z.literal('removeHistory'), body: RoomBody }).strict(),
  ])
  .openapi('BatchItem');
export type TBatchItem = z.infer<typeof BatchItem>;

export const BatchBody = z
  .object({
    requests: z
      .array(BatchItem)
      .min(1)
      .openapi({ description: 'Run in order; at most maxBatch (default 100)' }),
  })
  .strict()
  .openapi('Batch');

export const BatchAnswer = z
  .object({
    results: z.array(
      z.union([
        z.object({ ok: z.literal(true), result: z.unknown() }),
        z.object({ ok: z.literal(false), error: ErrorAnswer.shape.error }),
      ]),
    ),
  })
  .openapi('BatchResults');
