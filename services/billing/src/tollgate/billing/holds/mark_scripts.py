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
local marked = 0
for i = 2, #ARGV, 4 do
  local hold_id, member, cost = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local value = redis.call('HGET', KEYS[2], hold_id)
  if value and redis.call('HSETNX', KEYS[5], hold_id, ARGV[i + 3]) == 1 then
    local w, l, parts = parse_hold(value)
    held_change = held_change + cost - w
    local counters = {}
    for p = 3, #parts do
      local t = parts[p]
      if string.sub(t, 1, 1) == '!' then
        t = string.sub(t, 2)
        change_counter('c:' .. t, -1)
      end
      change_counter('h:' .. t, cost - l)
      counters[#counters + 1] = t
    end
    local v = string.format('%d %d', cost, cost)
    if #counters > 0 then
      v = v .. ' ' .. table.concat(counters, ' ')
    end
    redis.call('HSET', KEYS[2], hold_id, v)
    redis.call('ZADD', KEYS[3], ARGV[1], member)
    marked = marked + 1
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
