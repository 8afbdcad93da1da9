"""The Lua script that loads an org's budgets, spend and quotas into Redis (see scripts.py for the
key layout); separate from the hot-path scripts it shares its hold parsing with."""

from __future__ import annotations

from tollgate.billing.holds.scripts import HOLD_HELPERS

# Loads or refreshes an org's limits from PostgreSQL. KEYS: wallet, holds, expiry, limits.
# ARGV: bver, ttl, init ('1': may load an unloaded hash), then three counted lists of field/value
# pairs: budgets (b:...), spend (s:...), quotas (q:...).
# An unloaded hash is loaded whole (init only): open holds are counted again from the holds hash.
# A loaded one merges spend and takes the budgets only if bver is newer. Returns 1 if it loaded.
SYNC_LIMITS = (
    HOLD_HELPERS
    + """
local lkey = KEYS[4]
local bver = tonumber(ARGV[1])
local lists = {}
local i = 4
for j = 1, 3 do
  local n = tonumber(ARGV[i])
  local items = {}
  for k = i + 1, i + 2 * n, 2 do
    items[#items + 1] = {ARGV[k], ARGV[k + 1]}
  end
  lists[j] = items
  i = i + 1 + 2 * n
end
local function set_budgets()
  local fields = redis.call('HKEYS', lkey)
  for k = 1, #fields do
    if string.sub(fields[k], 1, 2) == 'b:' then
      redis.call('HDEL', lkey, fields[k])
    end
  end
  for k = 1, #lists[1] do
    redis.call('HSET', lkey, lists[1][k][1], lists[1][k][2])
  end
  redis.call('HSET', lkey, 'bver', ARGV[1])
end
local loaded = redis.call('HEXISTS', lkey, 'bver') == 1
if not loaded and ARGV[3] ~= '1' then
  return 0
end
for k = 1, #lists[2] do
  merge_spent(lists[2][k][1], lists[2][k][2])
end
if loaded then
  if tonumber(redis.call('HGET', lkey, 'bver')) < bver then
    set_budgets()
  end
  return 0
end
local fields = redis.call('HKEYS', lkey)
for k = 1, #fields do
  local prefix = string.sub(fields[k], 1, 2)
  if prefix == 'h:' or prefix == 'c:' or prefix == 'q:' then
    redis.call('HDEL', lkey, fields[k])
  end
end
local holds = redis.call('HVALS', KEYS[2])
for k = 1, #holds do
  local w, l, parts = parse_hold(holds[k])
  for p = 3, #parts do
    local t = parts[p]
    if string.sub(t, 1, 1) == '!' then
      t = string.sub(t, 2)
      redis.call('HINCRBY', lkey, 'c:' .. t, 1)
    end
    redis.call('HINCRBY', lkey, 'h:' .. t, string.format('%d', l))
  end
end
for k = 1, #lists[3] do
  redis.call('HSET', lkey, lists[3][k][1], lists[3][k][2])
end
set_budgets()
if tonumber(ARGV[2]) > 0 then
  redis.call('EXPIRE', lkey, ARGV[2])
end
return 1
"""
)
