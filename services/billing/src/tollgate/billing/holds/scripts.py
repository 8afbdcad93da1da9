"""Lua scripts for credit holds. Each runs atomically in Redis, so checks and writes cannot interleave.

Keys of one organisation (the `{org}` hash tag keeps them in one cluster slot):
  wallet  `<prefix>:wallet:{org}`  hash: balance, version (mirrors PostgreSQL), held (sum of open holds)
  holds   `<prefix>:holds:{org}`   hash: hold_id -> amount
  expiry  `<prefix>:hold-expiry`   zset: "<org>\\n<hold_id>" scored by expiry time (unix seconds)
The expiry index is one key across organisations so one sweeper can find every expired hold; it
assumes a single Redis primary (on Redis Cluster it would need one index per slot).

Amounts are integer micros; Lua numbers are doubles, exact up to 2^53 micros (9e9 credits), far
above the 1e9-credit recharge cap. Integers are written back with string.format('%d') or HINCRBY.
"""

from __future__ import annotations

# Returns {status, available}: status 1 granted (or already held: same id, same answer),
# 0 refused, -1 wallet not cached (the caller loads it from PostgreSQL and retries).
# `available` is what was spendable before this hold.
RESERVE = """
local w = redis.call('HMGET', KEYS[1], 'balance', 'held')
if not w[1] then
  return {-1, 0}
end
local available = tonumber(w[1]) - tonumber(w[2] or '0')
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  return {1, available + tonumber(existing)}
end
if available >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'held', ARGV[2])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  return {1, available}
end
return {0, available}
"""

# Releases one hold; 1 when it was open, 0 when already gone (released, settled or expired).
RELEASE = """
redis.call('ZREM', KEYS[3], ARGV[2])
local amount = redis.call('HGET', KEYS[2], ARGV[1])
if not amount then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HEXISTS', KEYS[1], 'balance') == 1 then
  redis.call('HINCRBY', KEYS[1], 'held', string.format('%d', -tonumber(amount)))
end
return 1
"""

# Sets the cached balance from PostgreSQL, only moving forward: applied when the wallet is not
# cached or its cached version is older. A freshly cached wallet recomputes `held` from the holds
# hash (holds outlive an evicted or expired wallet). Returns 1 when applied, 0 when stale.
_SYNC_BODY = """
local function sync(balance, version, ttl)
  if redis.call('HEXISTS', KEYS[1], 'balance') == 1 then
    local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '-1')
    if current >= tonumber(version) then
      return 0
    end
    redis.call('HSET', KEYS[1], 'balance', balance, 'version', version)
  else
    local held = 0
    local values = redis.call('HVALS', KEYS[2])
    for i = 1, #values do
      held = held + tonumber(values[i])
    end
    redis.call('HSET', KEYS[1], 'balance', balance, 'version', version, 'held', string.format('%d', held))
  end
  if tonumber(ttl) > 0 then
    redis.call('EXPIRE', KEYS[1], ttl)
  end
  return 1
end
"""

SYNC_WALLET = (
    _SYNC_BODY
    + """
return sync(ARGV[1], ARGV[2], ARGV[3])
"""
)

# After a settlement commits: release the org's settled holds and move the cached balance forward,
# in one step so no reader sees the charge without the hold released (or the reverse).
# ARGV: balance ('' = leave the balance alone), version, ttl, then hold_id/member pairs.
# Returns the number of holds that were still open.
SETTLE = (
    _SYNC_BODY
    + """
local released = 0
for i = 4, #ARGV, 2 do
  redis.call('ZREM', KEYS[3], ARGV[i + 1])
  local amount = redis.call('HGET', KEYS[2], ARGV[i])
  if amount then
    redis.call('HDEL', KEYS[2], ARGV[i])
    released = released + 1
    if redis.call('HEXISTS', KEYS[1], 'balance') == 1 then
      redis.call('HINCRBY', KEYS[1], 'held', string.format('%d', -tonumber(amount)))
    end
  end
end
if ARGV[1] ~= '' then
  sync(ARGV[1], ARGV[2], ARGV[3])
end
return released
"""
)
