"""The Redis store's Lua scripts (``stores.redis``): each put, delete and pacing slot runs as one script, so
its checks and every index change are one atomic step for every instance sharing the server."""

from __future__ import annotations

# KEYS: session hash, timer zset, sessions zset. ARGV[1], ARGV[2]: prefix, session id.
PRELUDE = """
local prefix, id = ARGV[1], ARGV[2]
local FIELDS = {'calls', 'conferences', 'timers', 'status', 'flow'}
local function unlink(kind, refs)
  for _, ref in ipairs(cjson.decode(refs)) do
    local key = prefix .. kind .. ref
    -- an id another session has since taken over stays with that session
    if redis.call('GET', key) == id then redis.call('DEL', key) end
  end
end
local function unindex(old)
  unlink('call:', old[1])
  unlink('conference:', old[2])
  for _, member in ipairs(cjson.decode(old[3])) do redis.call('ZREM', KEYS[2], member) end
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', prefix .. 'status:' .. old[4], id)
  redis.call('ZREM', prefix .. 'flow:' .. old[5], id)
end
"""

# ARGV[3..]: expected revision ('' = must not exist), doc, status, flow, updated_at, call ids, conference ids,
# timer members, timer dues (JSON arrays; dues as strings because Lua numbers would lose precision), state,
# the claim key to set with the record ('': none) and its time to live in ms.
PUT = (
    PRELUDE
    + """
local current = redis.call('HGET', KEYS[1], 'rev')
if (ARGV[3] == '' and current) or (ARGV[3] ~= '' and current ~= ARGV[3]) then return -1 end
if current then unindex(redis.call('HMGET', KEYS[1], unpack(FIELDS))) end
local rev = (tonumber(current) or 0) + 1
local status, flow, updated = ARGV[5], ARGV[6], ARGV[7]
for _, ref in ipairs(cjson.decode(ARGV[8])) do redis.call('SET', prefix .. 'call:' .. ref, id) end
for _, ref in ipairs(cjson.decode(ARGV[9])) do redis.call('SET', prefix .. 'conference:' .. ref, id) end
local members, dues = cjson.decode(ARGV[10]), cjson.decode(ARGV[11])
for i, member in ipairs(members) do redis.call('ZADD', KEYS[2], dues[i], member) end
redis.call('HSET', KEYS[1], 'rev', rev, 'doc', ARGV[4], 'status', status, 'flow', flow,
  'calls', ARGV[8], 'conferences', ARGV[9], 'timers', ARGV[10], 'state', ARGV[12], 'upd', updated)
redis.call('ZADD', KEYS[3], updated, id)
redis.call('ZADD', prefix .. 'status:' .. status, updated, id)
redis.call('ZADD', prefix .. 'flow:' .. flow, updated, id)
if ARGV[13] ~= '' then redis.call('SET', ARGV[13], '1', 'NX', 'PX', ARGV[14]) end
return rev
"""
)

# ARGV[3]: '' to delete unconditionally, else only a finished session updated before this time (purge).
DELETE = (
    PRELUDE
    + """
local old = redis.call('HMGET', KEYS[1], unpack(FIELDS))
if not old[4] then return 0 end
if ARGV[3] ~= '' then
  if old[4] ~= 'ended' and old[4] ~= 'failed' then return 0 end
  local updated = redis.call('ZSCORE', KEYS[3], id)
  if not updated or tonumber(updated) >= tonumber(ARGV[3]) then return 0 end
end
unindex(old)
redis.call('DEL', KEYS[1])
return 1
"""
)

# ``base.next_slot`` as one script, so the read, the reckoning and the write are one atomic step for every
# instance. KEYS[1]: the bucket. ARGV: interval, burst, now, max_wait. Numbers travel as strings (a Lua
# number returned to Redis is cut to an integer). Returns {taken (0|1), wait}. The key expires once the
# bucket has drained, so an idle one leaves nothing behind.
TAKE_SLOT = """
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, max_wait = tonumber(ARGV[3]), tonumber(ARGV[4])
local horizon = tonumber(redis.call('GET', KEYS[1]) or '')
local base = now
if horizon and horizon > now then base = horizon end
local slot = math.max(now, base - (burst - 1) * interval)
local wait = slot - now
if wait > max_wait then return {0, string.format('%.17g', wait)} end
local after = base + interval
local ttl = math.ceil((after - now) * 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.17g', after), 'PX', ttl)
return {1, string.format('%.17g', wait)}
"""
