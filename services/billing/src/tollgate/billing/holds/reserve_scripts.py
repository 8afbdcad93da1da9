"""Lua scripts that place credit holds: one (Reserve) or a stock of them for a busy key
(ReserveStock). Key layout and the rules the holds follow: scripts.py."""

from __future__ import annotations

from tollgate.billing.holds.scripts import HOLD_HELPERS

# KEYS: wallet, holds, expiry, limits, marks.
# ARGV: hold_id, max_cost, expires_at, member, check_limits ('1'/'0'), key_id, month, day, quota.
# Returns {status, available, hold, reason, balance, quota_changed, headroom}: status 1 granted (or
# already held: same id, same answer), 0 refused, -1 wallet not cached, -2 limits not cached (the
# caller loads from PostgreSQL and retries). reason: 1 insufficient_credits, 2 quota_exceeded,
# 3 budget_exceeded. `available` is what the wallet could spend before this hold. `headroom` is what
# is left after a newly granted hold under the tightest of the wallet and every limit, -1 when the
# hold already existed (0 otherwise).
_RESERVE_ONE = """
-- What no one else can change while the script runs is read once per script (a stock reserves
-- many holds): the wallet's balance and held, the limits hash's fields. What the script itself
-- adds to `held` and to the counters waits in held_change / counter_change (flush_counters at the
-- end) and is added to what was read.
local wallet_read = nil
local limits_read = {}

local function read_wallet()
  if wallet_read == nil then
    local w = redis.call('HMGET', KEYS[1], 'balance', 'held')
    wallet_read = {w[1], tonumber(w[2] or '0')}
  end
  return wallet_read[1], wallet_read[2] + held_change
end

-- the limits hash's fields (false when absent); one HMGET for those not read before
local function read_limits(fields)
  local missing = {}
  for i = 1, #fields do
    if limits_read[fields[i]] == nil then
      missing[#missing + 1] = fields[i]
    end
  end
  if #missing > 0 then
    local values = redis.call('HMGET', KEYS[4], unpack(missing))
    for i = 1, #missing do
      limits_read[missing[i]] = values[i]
    end
  end
  local out = {}
  for i = 1, #fields do
    out[i] = limits_read[fields[i]]
  end
  return out
end

local function counter(field)
  return tonumber(limits_read[field] or '0') + (counter_change[field] or 0)
end

local function reserve_one(hold_id, member)
  local cached_balance, held = read_wallet()
  if not cached_balance then
    return {-1, 0, 0, 0, 0, 0, 0}
  end
  local balance = tonumber(cached_balance)
  local available = balance - held
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
    local key, month, day, quota = ARGV[6], ARGV[7], ARGV[8], tonumber(ARGV[9])
    local k = 'k' .. key
    local v
    if key ~= '0' then
      v = read_limits({'bver', 'b:org:m', 'b:org:d', 'q:' .. key, 'b:' .. k .. ':m', 'b:' .. k .. ':d'})
    else
      v = read_limits({'bver', 'b:org:m', 'b:org:d'})
    end
    if not v[1] then
      return {-2, available, 0, 0, balance, 0, 0}
    end
    local limits = {}
    counters = {'org:' .. month, 'org:' .. day}
    if key ~= '0' then
      counters[3] = k .. ':' .. month
      counters[4] = k .. ':' .. day
      local seen = v[4]
      if seen ~= ARGV[9] then
        redis.call('HSET', KEYS[4], 'q:' .. key, ARGV[9])
        limits_read['q:' .. key] = ARGV[9]
        if seen or quota > 0 then
          quota_changed = 1
        end
      end
      if quota > 0 then
        limits[#limits + 1] = {counters[3], quota, 2}
      end
      if v[5] then limits[#limits + 1] = {counters[3], tonumber(v[5]), 3} end
      if v[6] then limits[#limits + 1] = {counters[4], tonumber(v[6]), 3} end
    end
    if v[2] then limits[#limits + 1] = {counters[1], tonumber(v[2]), 3} end
    if v[3] then limits[#limits + 1] = {counters[2], tonumber(v[3]), 3} end
    local wanted = {}
    for i = 1, #limits do
      local f = limits[i][1]
      wanted[#wanted + 1] = 's:' .. f
      wanted[#wanted + 1] = 'h:' .. f
      wanted[#wanted + 1] = 'c:' .. f
    end
    read_limits(wanted)
    local binding = 0
    local limited = {}
    for i = 1, #limits do
      local f, limit, reason = limits[i][1], limits[i][2], limits[i][3]
      local remaining = limit - tonumber(limits_read['s:' .. f] or '0') - counter('h:' .. f)
      limited[#limited + 1] = counter('c:' .. f)
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
      change_counter('h:' .. f, hold)
      if hold < cost then
        change_counter('c:' .. f, 1)
        counters[i] = '!' .. f
      end
    end
  end
  local value = string.format('%d %d', cost, hold)
  if #counters > 0 then
    value = value .. ' ' .. table.concat(counters, ' ')
  end
  redis.call('HSET', KEYS[2], hold_id, value)
  held_change = held_change + cost
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

RESERVE = (
    HOLD_HELPERS
    + _RESERVE_ONE
    + """
local result = reserve_one(ARGV[1], ARGV[4])
flush_counters()
return result
"""
)

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
local function stock()
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
        return {placed, 2, 0, quota_changed}
      end
    end
    placed = placed + 1
  end
  return {placed, 1, 0, quota_changed}
end
local result = stock()
flush_counters()
return result
"""
)
