/**
 * Lua scripts of the Redis history. Each runs atomically, so a room's offsets are assigned,
 * stored and published in one order that every subscriber sees.
 *
 * KEYS[1] = meta hash `{ epoch, offset, created, p }`, KEYS[2] = stream, KEYS[3] (read and remove
 * only) = the generation key of the slot (see keys.ts). Only a publication creates a room's keys:
 * the publish script creates the epoch when the meta key is missing (from the candidate in
 * ARGV[1]), records when (`created`, Redis time) and drops any stream left from an older epoch.
 * A read of a room without meta writes nothing of the room: it answers the "empty position"
 * `{ offset: 0, epoch: '~<generation>.<ms>' }` (see READ_SCRIPT). Redis 7 replicates script
 * effects, so calling TIME before writing is allowed.
 */

const TIME = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

const NOW = `${TIME}
local minId = now - tonumber(ARGV[3])
if minId < 0 then minId = 0 end
minId = string.format('%d', minId)
`;

/**
 * ARGV: 1 epoch candidate, 2 meta ttl ms, 3 ttl ms, 4 size, 5 channel, 6 envelope head (JSON
 * object text without its closing brace), 7 event, 8 '1' when there is data, 9 data JSON,
 * 10 deadline (Redis time in ms; 0: none), 11 mode.
 *
 * Mode `p` (the publisher has the policy in ARGV 2-4): positions, stores and publishes. The policy
 * is kept in the meta hash (`p` = `<metaTtl>:<ttl>:<size>`); when the stored one differs it is
 * replaced and the old one returned, so the publisher reports a fleet that disagrees.
 * Mode `c` (the publisher has no policy for the room: an emitter without `historyFn`): when the
 * room's meta hash holds a policy, the publication is positioned by that policy like in mode `p`;
 * otherwise it is published as is, without a position, and nothing is written.
 *
 * Past the deadline (Redis was stalled while the command waited) nothing is written or published.
 * Returns `{ offset, epoch, now, previous policy or '' }` as strings; offset '-1' past the
 * deadline, '0' for a publication sent without a position (mode `c`).
 */
export const PUBLISH_SCRIPT = `${TIME}
local deadline = tonumber(ARGV[10])
if deadline > 0 and now > deadline then return { '-1', '', string.format('%d', now), '' } end
local body = ''
if ARGV[8] == '1' then body = ',"data":' .. ARGV[9] end
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'p')
local epoch = meta[1]
local stored = meta[2]
local metaTtl, ttl, size = ARGV[2], ARGV[3], ARGV[4]
local previous = ''
if ARGV[11] == 'c' then
  if epoch and stored then metaTtl, ttl, size = string.match(stored, '^(%d+):(%d+):(%d+)$') end
  if not (epoch and metaTtl) then
    redis.call('PUBLISH', ARGV[5], ARGV[6] .. body .. '}')
    return { '0', '', string.format('%d', now), '' }
  end
else
  local policy = metaTtl .. ':' .. ttl .. ':' .. size
  if epoch and stored ~= policy then
    if stored then previous = stored end
    redis.call('HSET', KEYS[1], 'p', policy)
  end
end
local minId = now - tonumber(ttl)
if minId < 0 then minId = 0 end
minId = string.format('%d', minId)
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0, 'created', string.format('%d', now), 'p', metaTtl .. ':' .. ttl .. ':' .. size)
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], metaTtl)
local o = string.format('%d', redis.call('HINCRBY', KEYS[1], 'offset', 1))
if ARGV[8] == '1' then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, '*', 'o', o, 'e', ARGV[7], 'd', ARGV[9])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', size, '*', 'o', o, 'e', ARGV[7])
end
redis.call('XTRIM', KEYS[2], 'MINID', minId)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PUBLISH', ARGV[5], ARGV[6] .. body .. ',"offset":' .. o .. ',"epoch":"' .. epoch .. '"}')
return { o, epoch, string.format('%d', now), previous }
`;

/**
 * A hole: a publication went to a room kept here without a position (its publisher keeps no
 * history for the room and none was stored yet, or the fleet disagrees). It cannot be recovered, so
 * the room's offset moves past it: a recovery across it finds the offset missing from the stream
 * and answers not retained, instead of `recovered: true` without it.
 * KEYS: 1 meta, 2 stream, 3 a marker for this publication (same slot), so that only the first of
 * the instances that received it makes the hole. ARGV: 1 epoch candidate, 2 meta ttl ms, 3 ttl ms,
 * 4 size, 5 marker ttl ms. Returns 1 when it made the hole, 0 when another instance had.
 */
export const HOLE_SCRIPT = `${TIME}
if not redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[5]) then return 0 end
if not redis.call('HGET', KEYS[1], 'epoch') then
  redis.call('HSET', KEYS[1], 'epoch', ARGV[1], 'offset', 0, 'created', string.format('%d', now), 'p', ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[4])
  redis.call('DEL', KEYS[2])
end
redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

/**
 * ARGV: 1 generation candidate, 2 meta ttl ms, 3 ttl ms, 4 size, 5 since offset (-1: none),
 * 6 since epoch, 7 limit, 8 '1' for newest first.
 * Returns `{ epoch, offset, retained (1/0), fields of each publication... }`.
 * Entries older than ttl are ignored (the range starts at now - ttl). With `since`, every
 * offset since+1..top must still be there (the stream holds them contiguously), else retained = 0.
 *
 * A room without meta answers `{ '~<gen>.<now>', 0 }` and creates nothing of the room. Such an
 * empty position at time T stays valid (as offset 0 of the room's stream) while the generation
 * is unchanged (no FLUSH, restart without persistence or removeHistory in this slot since) and
 * either there is still no stream and now - T < metaTtl, or the stream was created at C with
 * T <= C and C - T < metaTtl: any stream created after T and gone before C lived metaTtl or more,
 * so none can have been missed. The generation key is the only key a read may create (one per
 * slot, never per room).
 */
export const READ_SCRIPT = `${NOW}
local gen = redis.call('GET', KEYS[3])
if not gen then
  gen = ARGV[1]
  redis.call('SET', KEYS[3], gen)
end
local metaTtl = tonumber(ARGV[2])
local since = tonumber(ARGV[5])
local sinceEpoch = ARGV[6]
local emptyAt = nil
if since == 0 then
  local g, at = string.match(sinceEpoch, '^~([^.]+)%.(%d+)$')
  if g == gen then emptyAt = tonumber(at) end
end
local meta = redis.call('HMGET', KEYS[1], 'epoch', 'offset', 'created')
local epoch = meta[1]
if not epoch then
  local out = { '~' .. gen .. '.' .. string.format('%d', now), '0', 1 }
  if since >= 0 and not (emptyAt and emptyAt <= now and now - emptyAt < metaTtl) then out[3] = 0 end
  return out
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if emptyAt then
  local created = tonumber(meta[3] or '-1')
  if created >= emptyAt and created - emptyAt < metaTtl then sinceEpoch = epoch end
end
local top = tonumber(meta[2] or '0')
local limit = tonumber(ARGV[7])
local reverse = ARGV[8] == '1'
local out = { epoch, string.format('%d', top), 1 }
if since >= 0 then
  if sinceEpoch ~= epoch or since > top or top - since > tonumber(ARGV[4]) then
    out[3] = 0
    return out
  end
  if since == top then return out end
  local rows = redis.call('XREVRANGE', KEYS[2], '+', minId, 'COUNT', top - since)
  local oldest = rows[#rows]
  if #rows ~= top - since or tonumber(oldest[2][2]) ~= since + 1 then
    out[3] = 0
    return out
  end
  local count = math.min(limit, #rows)
  if reverse then
    for i = 1, count do out[#out + 1] = rows[i][2] end
  else
    for i = #rows, #rows - count + 1, -1 do out[#out + 1] = rows[i][2] end
  end
  return out
end
if limit == 0 then return out end
local rows
if reverse then
  rows = redis.call('XREVRANGE', KEYS[2], '+', minId, 'COUNT', limit)
else
  rows = redis.call('XRANGE', KEYS[2], minId, '+', 'COUNT', limit)
end
for i = 1, #rows do out[#out + 1] = rows[i][2] end
return out
`;

/**
 * KEYS as READ_SCRIPT; ARGV[1] a new generation. Deletes the room's keys and replaces the slot's
 * generation, so no empty position taken before can be taken for one of a later stream.
 */
export const REMOVE_SCRIPT = `
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[1])
return 1
`;

/** The same script for sharded Pub/Sub: SPUBLISH, on a channel in the keys' slot (see keys.ts). */
export const SHARDED_PUBLISH_SCRIPT = PUBLISH_SCRIPT.replaceAll(
  "redis.call('PUBLISH',",
  "redis.call('SPUBLISH',",
);
