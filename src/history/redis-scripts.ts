/**
 * Lua scripts of the Redis history. Each runs atomically, so a room's offsets are assigned,
 * stored and published in one order that every subscriber sees.
 *
 * KEYS[1] = meta hash `{ epoch, offset }`, KEYS[2] = stream. Both scripts create the epoch
 * when the meta key is missing (from the candidate in ARGV[1]) and then drop any stream left
 * from an older epoch. Redis 7 replicates script effects, so calling TIME before writing is allowed.
 */

const ENSURE_EPOCH = `
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
  redis.call('DEL', KEYS[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local minId = now - tonumber(ARGV[3])
if minId < 0 then minId = 0 end
minId = string.format('%d', minId)
`;

/**
 * ARGV: 1 epoch candidate, 2 meta ttl ms, 3 ttl ms, 4 size, 5 channel, 6 envelope head (JSON
 * object text without its closing brace), 7 event, 8 '1' when there is data, 9 data JSON.
 * Returns `{ offset, epoch }` as strings.
 */
export const PUBLISH_SCRIPT = `${ENSURE_EPOCH}
local o = string.format('%d', redis.call('HINCRBY', KEYS[1], 'offset', 1))
local body = ''
if ARGV[8] == '1' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 'o', o, 'e', ARGV[7], 'd', ARGV[9])
  body = ',"data":' .. ARGV[9]
else
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], '*', 'o', o, 'e', ARGV[7])
end
redis.call('XTRIM', KEYS[2], 'MINID', minId)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[5], ARGV[6] .. body .. ',"offset":' .. o .. ',"epoch":"' .. epoch .. '"}')
return { o, epoch }
`;

/**
 * ARGV: 1 epoch candidate, 2 meta ttl ms, 3 ttl ms, 4 size, 5 since offset (-1: none),
 * 6 since epoch, 7 limit, 8 '1' for newest first.
 * Returns `{ epoch, offset, retained (1/0), fields of each publication... }`.
 * Entries older than ttl are ignored (the range starts at now - ttl). With `since`, every
 * offset since+1..top must still be there (the stream holds them contiguously), else retained = 0.
 */
export const READ_SCRIPT = `${ENSURE_EPOCH}
local top = tonumber(redis.call('HGET', KEYS[1], 'offset') or '0')
local since = tonumber(ARGV[5])
local limit = tonumber(ARGV[7])
local reverse = ARGV[8] == '1'
local out = { epoch, string.format('%d', top), 1 }
if since >= 0 then
  if ARGV[6] ~= epoch or since > top or top - since > tonumber(ARGV[4]) then
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

/** The same script for sharded Pub/Sub: SPUBLISH, on a channel in the keys' slot (see keys.ts). */
export const SHARDED_PUBLISH_SCRIPT = PUBLISH_SCRIPT.replace(
  "redis.call('PUBLISH',",
  "redis.call('SPUBLISH',",
);
