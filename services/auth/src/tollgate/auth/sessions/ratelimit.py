"""Login attempt limits in Redis, per account and per client IP, in fixed windows.

An attempt is counted before the password is checked, in one Lua script that first refuses when
either counter is full: concurrent guesses cannot slip past the limit, and refused attempts are
not counted, so a window always ends `window_s` after its first failure (nobody is locked out
for good, however long an attacker keeps trying). A success clears the account's counter and
takes its own attempt back off the IP's, so the IP counter counts failures only.
"""

from __future__ import annotations

import hashlib
import logging
import math

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tollgate.auth.sessions.errors import LoginThrottled

log = logging.getLogger(__name__)

# KEYS: account counter, ip counter. ARGV: account max, ip max, window (ms).
# Returns {1, 0} when the attempt may go ahead, {0, ms until the full counter resets} when not.
_ATTEMPT = """
local limits = {tonumber(ARGV[1]), tonumber(ARGV[2])}
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= limits[i] then
    return {0, redis.call('PTTL', key)}
  end
end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, ARGV[3]) end
end
return {1, 0}
"""

# KEYS: account counter, ip counter.
_SUCCESS = """
redis.call('DEL', KEYS[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 1
"""


class LoginLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        max_per_account: int = 5,
        max_per_ip: int = 100,
        window_s: int = 300,
        prefix: str = "auth:login-fail",
    ) -> None:
        self._attempt = redis.register_script(_ATTEMPT)
        self._success = redis.register_script(_SUCCESS)
        self._limits = (max_per_account, max_per_ip)
        self._window_ms = window_s * 1000
        self._prefix = prefix

    def _keys(self, email: str, ip: str) -> list[str]:
        # Hashed so Redis holds no email addresses.
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
        return [f"{self._prefix}:acct:{account}", f"{self._prefix}:ip:{ip}"]

    async def attempt(self, email: str, ip: str) -> None:
        """Raises LoginThrottled (429, Retry-After) when the account or the IP is over its limit.

        Fails open when Redis is down: logins keep working (each guess still costs an argon2
        verification) rather than nobody being able to sign in."""
        try:
            allowed, pttl = await self._attempt(
                keys=self._keys(email, ip), args=[*self._limits, self._window_ms]
            )
        except RedisError as exc:
            log.warning("login limiter unavailable; attempt not counted", extra={"error": str(exc)})
            return
        if not int(allowed):
            pttl = int(pttl)
            retry_after = math.ceil(pttl / 1000) if pttl > 0 else self._window_ms // 1000
            raise LoginThrottled(
                "Too many failed login attempts; try again later.", retry_after_s=max(1, retry_after)
            )

    async def succeeded(self, email: str, ip: str) -> None:
        try:
            await self._success(keys=self._keys(email, ip))
        except RedisError as exc:
            log.warning("login limiter unavailable; counters not reset", extra={"error": str(exc)})
