"""Lua scripts for credit holds. Each runs atomically in Redis, so checks and writes cannot interleave.

Keys of one organisation (the `{org}` hash tag keeps them in one cluster slot):
  wallet  `<prefix>:wallet:{org}`  hash: balance, version (mirrors PostgreSQL), held (sum of open holds)
  holds   `<prefix>:holds:{org}`   hash: hold_id -> "<wallet amount> <limit amount> <counter>..."
  limits  `<prefix>:limits:{org}`  hash, present once loaded (field bver):
            bver                 budget config version (PostgreSQL budget_versions)
            b:<scope>:m|d        hard budget limit (scope "org" or "k<key_id>", monthly or daily)
            q:<key_id>           the key's month quota as last seen in a Reserve
            s:<scope>:<period>   spend settled in that period (PostgreSQL spend_counters), only grows
            h:<scope>:<period>   sum of the limit amounts of open holds counted in that period
            c:<scope>:<period>   open short holds (capped below max_cost) counted there
  expiry  `<prefix>:hold-expiry`   zset: "<org>\\n<hold_id>" scored by expiry time (unix seconds)
  marks   `<prefix>:marks:{org}`   hash: hold_id -> the gateway's mark of an answered request (a
                                   base64 HoldMark: its actual cost and its usage event); a marked
                                   hold's amounts are that cost, and it is settled, never released
The expiry index is one key across organisations so one sweeper can find every expired hold; it
assumes a single Redis primary (on Redis Cluster it would need one index per slot).

A hold's wallet amount is the request's full max_cost (the wallet is never capped: prepaid credits
stay covered); its limit amount is max_cost capped at what every budget and quota still allows.
A hold counts against its org's and its key's month and day counters; a "!" marks a short hold
(capped below max_cost). While a short hold is open on a counter that has a limit, no other request
that would need capping is admitted against that limit, so each limit is overshot by at most one
request's max_cost - hold, and only when that request really costs more than its hold.
Spend counters only grow, so every write merges with max() and order cannot matter.

Amounts are integer micros; Lua numbers are doubles, exact up to 2^53 micros (9e9 credits), far
above the 1e9-credit recharge cap. Integers are written back with string.format('%d') or HINCRBY.
"""

from __future__ import annotations

# Parsing a hold and taking it off the limit counters, shared by release, settle and sweep.
HOLD_HELPERS = """
local function parse_hold(value)
  local parts = {}
  for p in string.gmatch(value, '%S+') do
    parts[#parts + 1] = p
  end
  local w = tonumber(parts[1])
  return w, tonumber(parts[2] or parts[1]), parts
end

-- A dropped or marked hold's changes to `held` and to the limit counters wait for
-- flush_counters(), so a batch of holds on the same counters writes each field once rather than
-- once per hold. Every script that drops or marks a hold flushes before it returns or reads a
-- counter (nothing reads `held`, `h:` or `c:` in between); a change left unflushed would be lost.
local held_change = 0
local counter_change = {}
local counter_fields = {}

local function change_counter(field, delta)
  local current = counter_change[field]
  if current == nil then
    counter_fields[#counter_fields + 1] = field
    current = 0
  end
  counter_change[field] = current + delta
end

-- the hold's limit amount comes off every counter it was placed on (and a short hold's count)
local function unhold_limits(parts, amount)
  for i = 3, #parts do
    local t = parts[i]
    if string.sub(t, 1, 1) == '!' then
      t = string.sub(t, 2)
      change_counter('c:' .. t, -1)
    end
    change_counter('h:' .. t, -amount)
  end
end

-- `held` only on a cached wallet, the counters only in a loaded limits hash (as a reload rebuilds
-- them from the holds that are open then)
local function flush_counters()
  if held_change ~= 0 and redis.call('HEXISTS', KEYS[1], 'balance') == 1 then
    redis.call('HINCRBY', KEYS[1], 'held', string.format('%d', held_change))
  end
  if #counter_fields > 0 and redis.call('HEXISTS', KEYS[4], 'bver') == 1 then
    for i = 1, #counter_fields do
      local f = counter_fields[i]
      redis.call('HINCRBY', KEYS[4], f, string.format('%d', counter_change[f]))
    end
  end
  held_change = 0
  counter_change = {}
  counter_fields = {}
end

-- 1 when the hold was open; its counter changes wait for flush_counters()
local function drop_hold(hold_id, member)
  redis.call('ZREM', KEYS[3], member)
  redis.call('HDEL', KEYS[5], hold_id)
  local value = redis.call('HGET', KEYS[2], hold_id)
  if not value then
    return 0
  end
  redis.call('HDEL', KEYS[2], hold_id)
  local w, l, parts = parse_hold(value)
  held_change = held_change - w
  unhold_limits(parts, l)
  return 1
end

local function merge_spent(field, value)
  local current = tonumber(redis.call('HGET', KEYS[4], field) or '-1')
  if tonumber(value) > current then
    redis.call('HSET', KEYS[4], field, value)
  end
end
"""

# KEYS: wallet, holds, expiry, limits, marks.
# ARGV: hold_id, max_cost, expires_at, member, check_limits ('1'/'0'), key_id, month, day, quota.
# Returns {status, available, hold, reason, balance, quota_changed, headroom}: status 1 granted (or
# already held: same id, same answer), 0 refused, -1 wallet not cached, -2 limits not cached (the
# caller loads from PostgreSQL and retries). reason: 1 insufficient_credits, 2 quota_exceeded,
# 3 budget_exceeded. `available` is what the wallet could spend before this hold. `headroom` is what
# is left after a newly granted hold under the tightest of the wallet and every limit, -1 when the
# hold already existed (0 otherwise).
_RESERVE_ONE = """
local function reserve_one(hold_id, member)
  local w = redis.call('HMGET', KEYS[1], 'balance', 'held')
  if not w[1] then
    return {-1, 0, 0, 0, 0, 0, 0}
  end
  local balance = tonumber(w[1])
  local available = balance - tonumber(w[2] or '0')
  local existing = redis.call('HGET', KEYS[2], hold_id)
  if existing then
    local ew, el = parse_hold(existing)
    return {1, available + ew, el, 0, balance, 0, -1}
  end
  local cost = tonumber(ARGV[2])
  if available < cost then
    return {0, available, 0, 1, balance, 0, 0}
  end
  local hold = cost
  local tightest = available
  local counters = {}
  local quota_changed = 0
  if ARGV[5] == '1' then
    local lkey = KEYS[4]
    if redis.call('HEXISTS', lkey, 'bver') == 0 then
      return {-2, available, 0, 0, balance, 0, 0}
    end
    local key, month, day, quota = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
    local limits = {}
    counters = {'org:' .. month, 'org:' .. day}
    if key ~= '0' then
      local k = 'k' .. key
      counters[3] = k .. ':' .. month
      counters[4] = k .. ':' .. day
      local seen = redis.call('HGET', lkey, 'q:' .. key)
      if seen ~= ARGV[9] then
        redis.call('HSET', lkey, 'q:' .. key, ARGV[9])
        if seen or quota > 0 then
          quota_changed = 1
        end
      end
      if quota > 0 then
        limits[#limits + 1] = {counters[3], quota, 2}
      end
      local kb = redis.call('HMGET', lkey, 'b:' .. k .. ':m', 'b:' .. k .. ':d')
      if kb[1] then limits[#limits + 1] = {counters[3], tonumber(kb[1]), 3} end
      if kb[2] then limits[#limits + 1] = {counters[4], tonumber(kb[2]), 3} end
    end
    local ob = redis.call('HMGET', lkey, 'b:org:m', 'b:org:d')
    if ob[1] then limits[#limits + 1] = {counters[1], tonumber(ob[1]), 3} end
    if ob[2] then limits[#limits + 1] = {counters[2], tonumber(ob[2]), 3} end
    local binding = 0
    local limited = {}
    for i = 1, #limits do
      local f, limit, reason = limits[i][1], limits[i][2], limits[i][3]
      local v = redis.call('HMGET', lkey, 's:' .. f, 'h:' .. f, 'c:' .. f)
      local remaining = limit - tonumber(v[1] or '0') - tonumber(v[2] or '0')
      limited[#limited + 1] = tonumber(v[3] or '0')
      if remaining < tightest then
        tightest = remaining
      end
      if cost > 0 and remaining <= 0 then
        return {0, available, 0, reason, balance, quota_changed, 0}
      end
      if cost > 0 and remaining < hold then
        hold = remaining
        binding = reason
      end
    end
    -- A short hold (below max_cost) may end in spend past a limit when the request costs more than
    -- its hold; allowing one short hold at a time on every limited counter bounds that overshoot to
    -- one request's max_cost - hold per limit.
    if hold < cost then
      for i = 1, #limited do
        if limited[i] > 0 then
          return {0, available, 0, binding, balance, quota_changed, 0}
        end
      end
    end
    for i = 1, #counters do
      local f = counters[i]
      redis.call('HINCRBY', lkey, 'h:' .. f, string.format('%d', hold))
      if hold < cost then
        redis.call('HINCRBY', lkey, 'c:' .. f, 1)
        counters[i] = '!' .. f
      end
    end
  end
  local value = string.format('%d %d', cost, hold)
  if #counters > 0 then
    value = value .. ' ' .. table.concat(counters, ' ')
  end
  redis.call('HSET', KEYS[2], hold_id, value)
  redis.call('HINCRBY', KEYS[1], 'held', string.format('%d', cost))
  redis.call('ZADD', KEYS[3], ARGV[3], member)
  -- the tightest limit loses `hold` (the wallet loses the full cost; a hold below cost means some
  -- limit is already down to it, so the headroom is 0 either way)
  local headroom = tightest - cost
  if hold < cost or headroom < 0 then
    headroom = 0
  end
  return {1, available, hold, 0, balance, quota_changed, headroom}
end
"""

RESERVE = HOLD_HELPERS + _RESERVE_ONE + "return reserve_one(ARGV[1], ARGV[4])\n"

# A stock of holds for a busy key (ReserveStock): RESERVE's checks for each hold id in turn, in one
# script. KEYS as RESERVE. ARGV: as RESERVE (ARGV[1] and ARGV[4] unused), then ARGV[10] the stock
# headroom (a hold is kept only when at least that many more of its size fit under the tightest
# limit), then hold_id/member pairs. Stops at the first hold that is refused (its reason code), not
# cached (-1/-2: the caller loads and retries the rest) or not stockable (placed, then dropped again).
# Returns {placed, code, reason, quota_changed}: code 1 all placed, 0 refused, 2 not stockable,
# -1/-2 not cached. An id that was already held counts as placed (a retried call).
RESERVE_STOCK = (
    HOLD_HELPERS
    + _RESERVE_ONE
    + """
local factor = tonumber(ARGV[10])
local cost = tonumber(ARGV[2])
local placed = 0
local quota_changed = 0
for i = 11, #ARGV, 2 do
  local r = reserve_one(ARGV[i], ARGV[i + 1])
  if r[6] == 1 then
    quota_changed = 1
  end
  if r[1] ~= 1 then
    return {placed, r[1], r[4], quota_changed}
  end
  if r[7] ~= -1 then
    if cost <= 0 or r[3] < cost or r[7] < factor * cost then
      drop_hold(ARGV[i], ARGV[i + 1])
      flush_counters()
      return {placed, 2, 0, quota_changed}
    end
  end
  placed = placed + 1
end
return {placed, 1, 0, quota_changed}
"""
)

# KEYS: wallet, holds, expiry, limits, marks. ARGV: hold_id, member.
# Releases one hold; 1 when it was open, 0 when already gone (released, settled or expired).
RELEASE = (
    HOLD_HELPERS
    + """
local dropped = drop_hold(ARGV[1], ARGV[2])
flush_counters()
return dropped
"""
)

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
      held = held + tonumber(string.match(values[i], '^%S+'))
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

# After a settlement commits: release the org's settled holds, merge its new spend totals and move
# the cached balance forward, in one step so no reader sees the charge without the hold released.
# KEYS: wallet, holds, expiry, limits, marks.
# ARGV: balance ('' = leave the balance alone), version, ttl, n, then n spend field/value pairs,
# then hold_id/member pairs. Spend is merged even into an unloaded limits hash, so a load that read
# PostgreSQL before this commit cannot put an older total back. Returns holds still open.
SETTLE = (
    _SYNC_BODY
    + HOLD_HELPERS
    + """
local n = tonumber(ARGV[4])
for i = 5, 4 + 2 * n, 2 do
  merge_spent(ARGV[i], ARGV[i + 1])
end
if n > 0 and redis.call('TTL', KEYS[4]) == -1 then
  redis.call('EXPIRE', KEYS[4], ARGV[3])
end
local released = 0
for i = 5 + 2 * n, #ARGV, 2 do
  released = released + drop_hold(ARGV[i], ARGV[i + 1])
end
flush_counters()
if ARGV[1] ~= '' then
  sync(ARGV[1], ARGV[2], ARGV[3])
end
return released
"""
)
