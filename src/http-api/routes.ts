import { createRoute, type z } from '@hono/zod-openapi';
import { HttpApiErrorCodes, type THttpApiErrorCode } from './errors.ts';
import {
  BatchAnswer,
  BatchBody,
  BroadcastBody,
  CommandAnswer,
  ConnectionsAnswer,
  ConnectionsQuery,
  DisconnectBody,
  DoneAnswer,
  ErrorAnswer,
  HistoryAnswer,
  HistoryQuery,
  InstancesAnswer,
  InstancesQuery,
  PresenceAnswer,
  PresenceQuery,
  PresenceStatsAnswer,
  PresenceStatsQuery,
  PublishClientBody,
  PublishedAnswer,
  PublishRoomBody,
  PublishUserBody,
  RoomBody,
  RoomsCommandBody,
  TopRoomsAnswer,
  TopRoomsQuery,
} from './schemas.ts';

const security = [{ bearerAuth: [] }];

/** The error answers every authenticated route may give, plus the route's own. */
function errors(...own: THttpApiErrorCode[]) {
  const codes: THttpApiErrorCode[] = [
    'UNAUTHORIZED',
    'RATE_LIMITED',
    'REDIS_UNAVAILABLE',
    'INTERNAL',
    ...own,
  ];
  const byStatus = new Map<number, THttpApiErrorCode[]>();
  for (const code of codes) {
    const status = HttpApiErrorCodes[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, list]) => [
      status,
      {
        description: `Error: ${[...new Set(list)].join(', ')}`,
        content: { 'application/json': { schema: ErrorAnswer } },
      },
    ]),
  );
}

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  200: { description, content: { 'application/json': { schema } } },
});

const body = <T extends z.ZodType>(schema: T) => ({
  body: { required: true, content: { 'application/json': { schema } } },
});

const WRITE_ERRORS = ['INVALID_JSON', 'INVALID_REQUEST', 'PAYLOAD_TOO_LARGE'] as const;

export const routes = {
  instances: createRoute({
    method: 'get',
    path: '/instances',
    summary: 'The live instances of the fleet, with their counts, rates and largest rooms',
    security,
    request: { query: InstancesQuery },
    responses: { ...json(InstancesAnswer, 'The live instances'), ...errors('INVALID_REQUEST') },
  }),
  topRooms: createRoute({
    method: 'get',
    path: '/rooms/top',
    summary: 'The rooms with the most members over the fleet (merged from the registry)',
    security,
    request: { query: TopRoomsQuery },
    responses: { ...json(TopRoomsAnswer, 'The largest rooms'), ...errors('INVALID_REQUEST') },
  }),
  presence: createRoute({
    method: 'get',
    path: '/presence',
    summary: "A presence room's members on every instance",
    security,
    request: { query: PresenceQuery },
    responses: { ...json(PresenceAnswer, 'The members'), ...errors('INVALID_REQUEST') },
  }),
  presenceStats: createRoute({
    method: 'get',
    path: '/presence/stats',
    summary: "A presence room's connection and user counts",
    security,
    request: { query: PresenceStatsQuery },
    responses: { ...json(PresenceStatsAnswer, 'The counts'), ...errors('INVALID_REQUEST') },
  }),
  history: createRoute({
    method: 'get',
    path: '/history',
    summary: "A history room's retained publications and current position",
    security,
    request: { query: HistoryQuery },
    responses: {
      ...json(HistoryAnswer, 'The publications'),
      ...errors('INVALID_REQUEST', 'HISTORY_UNAVAILABLE', 'UNRECOVERABLE_POSITION'),
    },
  }),
  removeHistory: createRoute({
    method: 'post',
    path: '/history/remove',
    summary: "Forgets a room's history and position",
    security,
    request: body(RoomBody),
    responses: { ...json(DoneAnswer, 'Removed'), ...errors(...WRITE_ERRORS) },
  }),
  publishRoom: createRoute({
    method: 'post',
    path: '/publish/room',
    summary: 'Publishes to a room on every instance (positioned when the room keeps history)',
    security,
    request: body(PublishRoomBody),
    responses: { ...json(PublishedAnswer, 'Published'), ...errors(...WRITE_ERRORS, 'MESSAGE_TOO_LARGE') },
  }),
  publishUser: createRoute({
    method: 'post',
    path: '/publish/user',
    summary: 'Publishes to every connection of a user',
    security,
    request: body(PublishUserBody),
    responses: { ...json(DoneAnswer, 'Published'), ...errors(...WRITE_ERRORS, 'MESSAGE_TOO_LARGE') },
  }),
  publishClient: createRoute({
    method: 'post',
    path: '/publish/client',
    summary: 'Publishes to one connection, wherever it is connected',
    security,
    request: body(PublishClientBody),
    responses: { ...json(DoneAnswer, 'Published'), ...errors(...WRITE_ERRORS, 'MESSAGE_TOO_LARGE') },
  }),
  broadcast: createRoute({
    method: 'post',
    path: '/publish/broadcast',
    summary: 'Publishes to every authenticated connection of the fleet',
    security,
    request: body(BroadcastBody),
    responses: { ...json(DoneAnswer, 'Published'), ...errors(...WRITE_ERRORS, 'MESSAGE_TOO_LARGE') },
  }),
  disconnect: createRoute({
    method: 'post',
    path: '/disconnect',
    summary: 'Closes a connection, or every connection of a user, on every instance',
    security,
    request: body(DisconnectBody),
    responses: { ...json(CommandAnswer, 'Sent'), ...errors(...WRITE_ERRORS, 'MESSAGE_TOO_LARGE') },
  }),
  join: createRoute({
    method: 'post',
    path: '/join',
    summary: 'Makes a connection, or every connection of a user, join rooms on every instance',
    security,
    request: body(RoomsCommandBody),
    responses: { ...json(CommandAnswer, 'Sent'), ...errors(...WRITE_ERRORS, 'MESSAGE_TOO_LARGE') },
  }),
  leave: createRoute({
    method: 'post',
    path: '/leave',
    summary: 'Makes a connection, or every connection of a user, leave rooms on every instance',
    security,
    request: body(RoomsCommandBody),
    responses: { ...json(CommandAnswer, 'Sent'), ...errors(...WRITE_ERRORS, 'MESSAGE_TOO_LARGE') },
  }),
  connections: createRoute({
    method: 'get',
    path: '/connections',
    summary: "A connection's, or a user's connections, described by every instance (no metadata, no payload)",
    security,
    request: { query: ConnectionsQuery },
    responses: {
      ...json(ConnectionsAnswer, 'The connections found'),
      ...errors('INVALID_REQUEST', 'NOT_AVAILABLE'),
    },
  }),
  batch: createRoute({
    method: 'post',
    path: '/batch',
    summary: 'Runs several write operations in order; each gets its own result',
    security,
    request: body(BatchBody),
    responses: {
      ...json(BatchAnswer, 'One result per request, in order'),
      ...errors(...WRITE_ERRORS, 'BATCH_TOO_LARGE'),
    },
  }),
};
