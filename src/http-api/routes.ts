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

/** A `POST` whose body is one batch operation's (its answer schema and extra error codes). */
const write = <B extends z.ZodType, A extends z.ZodType>(
  path: string,
  summary: string,
  schema: B,
  answer: A,
  ...own: THttpApiErrorCode[]
) =>
  createRoute({
    method: 'post',
    path,
    summary,
    security,
    request: body(schema),
    responses: { ...json(answer, 'Done'), ...errors(...WRITE_ERRORS, ...own) },
  });

/** The write routes, named by their batch `op`: one route each, and the same bodies in `/batch`. */
export const writeRoutes = {
  removeHistory: write('/history/remove', "Forgets a room's history and position", RoomBody, DoneAnswer),
  publishRoom: write(
    '/publish/room',
    'Publishes to a room on every instance (positioned when the room keeps history)',
    PublishRoomBody,
    PublishedAnswer,
    'MESSAGE_TOO_LARGE',
  ),
  publishUser: write(
    '/publish/user',
    'Publishes to every connection of a user',
    PublishUserBody,
    DoneAnswer,
    'MESSAGE_TOO_LARGE',
  ),
  publishClient: write(
    '/publish/client',
    'Publishes to one connection, wherever it is connected',
    PublishClientBody,
    DoneAnswer,
    'MESSAGE_TOO_LARGE',
  ),
  broadcast: write(
    '/publish/broadcast',
    'Publishes to every authenticated connection of the fleet',
    BroadcastBody,
    DoneAnswer,
    'MESSAGE_TOO_LARGE',
  ),
  disconnect: write(
    '/disconnect',
    'Closes a connection, or every connection of a user, on every instance',
    DisconnectBody,
    CommandAnswer,
    'MESSAGE_TOO_LARGE',
  ),
  join: write(
    '/join',
    'Makes a connection, or every connection of a user, join rooms on every instance',
    RoomsCommandBody,
    CommandAnswer,
    'MESSAGE_TOO_LARGE',
  ),
  leave: write(
    '/leave',
    'Makes a connection, or every connection of a user, leave rooms on every instance',
    RoomsCommandBody,
    CommandAnswer,
    'MESSAGE_TOO_LARGE',
  ),
};

/** A `GET` answering `answer`, its query checked by `query`. */
const read = <Q extends z.ZodObject, A extends z.ZodType>(
  path: string,
  summary: string,
  query: Q,
  answer: A,
  ...own: THttpApiErrorCode[]
) =>
  createRoute({
    method: 'get',
    path,
    summary,
    security,
    request: { query },
    responses: { ...json(answer, 'The answer'), ...errors('INVALID_REQUEST', ...own) },
  });

export const routes = {
  instances: read(
    '/instances',
    'The live instances of the fleet, with their counts, rates and largest rooms',
    InstancesQuery,
    InstancesAnswer,
  ),
  topRooms: read(
    '/rooms/top',
    'The rooms with the most members over the fleet (merged from the registry)',
    TopRoomsQuery,
    TopRoomsAnswer,
  ),
  presence: read('/presence', "A presence room's members on every instance", PresenceQuery, PresenceAnswer),
  presenceStats: read(
    '/presence/stats',
    "A presence room's connection and user counts",
    PresenceStatsQuery,
    PresenceStatsAnswer,
  ),
  history: read(
    '/history',
    "A history room's retained publications and current position",
    HistoryQuery,
    HistoryAnswer,
    'HISTORY_UNAVAILABLE',
    'UNRECOVERABLE_POSITION',
  ),
  connections: read(
    '/connections',
    "A connection's, or a user's connections, described by every instance (no metadata, no payload)",
    ConnectionsQuery,
    ConnectionsAnswer,
    'NOT_AVAILABLE',
  ),
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
