"""The shared state of the limits: one GCRA cell per limit in Redis, taken all-or-nothing.

Each cell is the limit's theoretical arrival time (TAT, milliseconds of Redis's own clock, so
gateway replicas with skewed clocks agree). Taking `cost` units moves the TAT `cost * interval`
ahead; it is allowed while the new TAT stays within one period of now. Every limit a request is
subject to (its key's, its organisation's, its model's, its address's) is checked in one script, and
nothing is taken unless all allow it: a refused request costs no limit anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from redis.asyncio import Redis

from tollgate.gateway.limits.specs import Cost, Limit, Verdict

# KEYS: the cells; ARGV: interval ms, period ms, cost for each cell, in order.
# Returns {allowed (0/1), index of the cell that refused (1-based, 0 when allowed), retry ms,
#          then remaining units and ms until whole, for each cell}.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = #KEYS
local old, new = {}, {}
local worst, worst_i = 0, 0
for i = 1, n do
  local interval, period, cost = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  old[i] = tat
  new[i] = tat + cost * interval
  local wait = new[i] - period - now
  if wait > worst then worst, worst_i = wait, i end
end
local allowed = worst <= 0
local out = {allowed and 1 or 0, worst_i, math.ceil(worst)}
for i = 1, n do
  local interval, period = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1])
  local tat = old[i]
  if allowed then
    tat = new[i]
    redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
  end
  out[#out + 1] = math.floor((period - (tat - now)) / interval)
  out[#out + 1] = math.ceil(tat - now)
end
return out
"""

# KEYS: the cells; ARGV: interval ms and units to give back (negative) or take on top (positive) for
# each. Never refuses: a request's usage beyond its estimate is owed whatever it was.
ADJUST = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
for i = 1, #KEYS do
  local interval, units = tonumber(ARGV[2*i-1]), tonumber(ARGV[2*i])
  local tat = tonumber(redis.call('GET', KEYS[i])) or now
  if tat < now then tat = now end
  tat = tat + units * interval
  if tat <= now then
    redis.call('DEL', KEYS[i])
  else
    redis.call('SET', KEYS[i], string.format('%.3f', tat), 'PX', math.ceil(tat - now) + 1000)
  end
end
return 0
"""


class RedisCells:
    def __init__(self, redis: Redis, *, prefix: str = "rl") -> None:
        self._redis = redis
        self._prefix = prefix
        self._take = redis.register_script(TAKE)
        self._adjust = redis.register_script(ADJUST)

    def _keys(self, limits: Sequence[Limit]) -> list[str]:
        return [f"{self._prefix}:{limit.redis_key}" for limit in limits]

    async def take(self, limits: Sequence[Limit], cost: Cost) -> Verdict:
        """One round trip: takes `cost` from every limit, or from none."""
        for limit in limits:
            if cost.of(limit) > limit.limit:  # larger than the limit itself: no wait will let it in
                return Verdict(False, limit, 0, limit.period_s, limit.period_s, never=True)
        args: list[float] = []
        for limit in limits:
            args += [limit.interval_ms, limit.period_s * 1000.0, cost.of(limit)]
        reply = await self._take(keys=self._keys(limits), args=args)
        allowed, refused_by, retry_ms = int(reply[0]), int(reply[1]), int(reply[2])
        cells = [(int(reply[3 + 2 * i]), int(reply[4 + 2 * i])) for i in range(len(limits))]
        if not allowed:
            remaining, reset_ms = cells[refused_by - 1]
            return Verdict(False, limits[refused_by - 1], max(remaining, 0), reset_ms / 1000, retry_ms / 1000)
        tightest = min(range(len(limits)), key=lambda i: cells[i][0] / limits[i].limit)
        remaining, reset_ms = cells[tightest]
        return Verdict(True, limits[tightest], max(remaining, 0), math.ceil(reset_ms) / 1000)

    async def adjust(self, limits: Sequence[Limit], units: Sequence[int]) -> None:
        """Gives units back (negative) or takes more (positive), without refusing."""
        pairs = [(limit, n) for limit, n in zip(limits, units, strict=True) if n]
        if not pairs:
            return
        args: list[float] = []
        for limit, n in pairs:
            args += [limit.interval_ms, n]
        await self._adjust(keys=self._keys([limit for limit, _ in pairs]), args=args)
