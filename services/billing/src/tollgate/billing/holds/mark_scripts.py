"""Lua scripts for marked holds (docs/billing.md "Holds at answer time"): the gateway's mark of an
answered request, and the sweeper's look at an expired hold. Key layout: scripts.py."""

from __future__ import annotations

from tollgate.billing.holds.scripts import HOLD_HELPERS

# The gateway's marks (billing's marks port): an answered request's hold falls to its actual cost at once,
# on the wallet and on every limit counter, and keeps the mark (the request's usage event) for the
# sweeper. A short hold stops being short: its cost is known, so it can no longer overshoot.
# KEYS: wallet, holds, expiry, limits, marks. ARGV: expires_at of a marked hold (when the sweeper
# publishes its event unless it was settled before), then hold_id/member/cost/mark quadruples.
# Idempotent per hold (the first mark wins); a hold already settled, released or expired is left
# alone (its event was settled, or the hold was never the request's record). Returns holds marked.
MARK = (
    HOLD_HELPERS
    + """
local ids = {}
for i = 2, #ARGV, 4 do
  ids[#ids + 1] = ARGV[i]
end
local marked = 0
local done = {}
for s = 1, #ids, CHUNK do
  local e = math.min(s + CHUNK - 1, #ids)
  local values = redis.call('HMGET', KEYS[2], unpack(ids, s, e))
  local kept = redis.call('HMGET', KEYS[5], unpack(ids, s, e))
  local new_marks, new_values, expiring = {}, {}, {}
  for j = 1, #values do
    local at = 2 + 4 * (s + j - 2)
    local hold_id, member, cost = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
    -- the first mark of an open hold wins (an id twice in one batch: its first entry)
    if values[j] and not kept[j] and not done[hold_id] then
      done[hold_id] = true
      local w, l, parts = parse_hold(values[j])
      held_change = held_change + cost - w
      unhold_limits(parts, l - cost)  -- the counters fall to the cost, and a short hold ends
      local counters = {}
      for p = 3, #parts do
        counters[#counters + 1] = (string.gsub(parts[p], '^!', ''))
      end
      local v = string.format('%d %d', cost, cost)
      if #counters > 0 then
        v = v .. ' ' .. table.concat(counters, ' ')
      end
      new_marks[#new_marks + 1] = hold_id
      new_marks[#new_marks + 1] = ARGV[at + 3]
      new_values[#new_values + 1] = hold_id
      new_values[#new_values + 1] = v
      expiring[#expiring + 1] = ARGV[1]
      expiring[#expiring + 1] = member
    end
  end
  if #new_marks > 0 then
    redis.call('HSET', KEYS[5], unpack(new_marks))
    redis.call('HSET', KEYS[2], unpack(new_values))
    redis.call('ZADD', KEYS[3], unpack(expiring))
    marked = marked + #new_marks / 2
  end
end
flush_counters()
return marked
"""
)

# One expired hold, for the sweeper. KEYS: wallet, holds, expiry, limits, marks.
# ARGV: hold_id, member, retry_at. An unmarked hold is released: {1, ''} (or {0, ''} when it was
# gone already). A marked one is kept and rescheduled to retry_at, and its mark returned: {2, mark};
# the sweeper publishes the mark's usage event, whose settlement then drops the hold.
SWEEP_ONE = (
    HOLD_HELPERS
    + """
local mark = redis.call('HGET', KEYS[5], ARGV[1])
if mark and redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
  return {2, mark}
end
local dropped = drop_hold(ARGV[1], ARGV[2])
flush_counters()
return {dropped, ''}
"""
)
