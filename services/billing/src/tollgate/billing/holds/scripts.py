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

-- Lua's unpack() has a stack limit (a few thousand values): variadic calls go in chunks of this
local CHUNK = 1000

-- Removes the holds `ids` (their expiry `members` and marks with them), five calls per chunk
-- whatever its size; an id given twice is dropped once. Returns how many were open. Their changes
-- to `held` and the counters wait for flush_counters().
local function drop_holds(ids, members)
  local dropped = {}
  local count = 0
  for s = 1, #ids, CHUNK do
    local e = math.min(s + CHUNK - 1, #ids)
    redis.call('ZREM', KEYS[3], unpack(members, s, e))
    redis.call('HDEL', KEYS[5], unpack(ids, s, e))
    local values = redis.call('HMGET', KEYS[2], unpack(ids, s, e))
    local open = {}
    for j = 1, #values do
      local id = ids[s + j - 1]
      if values[j] and not dropped[id] then
        dropped[id] = true
        open[#open + 1] = id
        local w, l, parts = parse_hold(values[j])
        held_change = held_change - w
        unhold_limits(parts, l)
      end
    end
    if #open > 0 then
      redis.call('HDEL', KEYS[2], unpack(open))
      count = count + #open
    end
  end
  return count
end

local function drop_hold(hold_id, member)
  return drop_holds({hold_id}, {member})
end

-- the hold_id/member pairs of ARGV from `first` on, as drop_holds' two lists
local function hold_pairs(first)
  local ids, members = {}, {}
  for i = first, #ARGV, 2 do
    ids[#ids + 1] = ARGV[i]
    members[#members + 1] = ARGV[i + 1]
  end
  return ids, members
end

local function merge_spent(field, value)
  local current = tonumber(redis.call('HGET', KEYS[4], field) or '-1')
  if tonumber(value) > current then
    redis.call('HSET', KEYS[4], field, value)
  end
end
"""

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
# PostgreSQL before this commit cannot put an older total back. Returns how many holds it released.
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
local released = drop_holds(hold_pairs(5 + 2 * n))
flush_counters()
if ARGV[1] ~= '' then
  sync(ARGV[1], ARGV[2], ARGV[3])
end
return released
"""
)
