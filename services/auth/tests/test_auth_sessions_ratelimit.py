"""Login attempt limits on the test profile's Redis (real counters, real expiry)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from tollgate.auth.sessions.errors import LoginThrottled
from tollgate.auth.sessions.ratelimit import LoginLimiter


def _limiter(redis: Redis, **limits: int) -> LoginLimiter:
    return LoginLimiter(redis, prefix=f"test-login:{uuid.uuid4().hex}", **limits)


async def test_the_sixth_attempt_in_a_window_is_refused_with_retry_after(redis: Redis) -> None:
    limiter = _limiter(redis, max_per_account=5, window_s=300)
    for _ in range(5):
        await limiter.attempt("Ann@Example.com", "10.0.0.1")
    with pytest.raises(LoginThrottled) as refused:
        await limiter.attempt("ann@example.com", "10.0.0.9")  # same account, any case, any address
    assert refused.value.status_code == 429
    assert 290 <= refused.value.retry_after_s <= 300


async def test_a_success_clears_the_account_counter(redis: Redis) -> None:
    limiter = _limiter(redis, max_per_account=5)
    for _ in range(4):
        await limiter.attempt("bob@example.com", "10.0.0.1")
    await limiter.attempt("bob@example.com", "10.0.0.1")  # the 5th, which succeeds
    await limiter.succeeded("bob@example.com", "10.0.0.1")
    for _ in range(5):
        await limiter.attempt("bob@example.com", "10.0.0.1")
    with pytest.raises(LoginThrottled):
        await limiter.attempt("bob@example.com", "10.0.0.1")


async def test_the_ip_limit_spans_accounts_and_counts_failures_only(redis: Redis) -> None:
    limiter = _limiter(redis, max_per_account=5, max_per_ip=3)
    await limiter.attempt("ok@example.com", "10.0.0.2")
    await limiter.succeeded("ok@example.com", "10.0.0.2")  # successes give their attempt back
    for n in range(3):
        await limiter.attempt(f"victim{n}@example.com", "10.0.0.2")
    with pytest.raises(LoginThrottled):
        await limiter.attempt("fresh@example.com", "10.0.0.2")
    await limiter.attempt("fresh@example.com", "10.0.0.3")  # another address is not affected


async def test_concurrent_attempts_cannot_exceed_the_limit(redis: Redis) -> None:
    limiter = _limiter(redis, max_per_account=5)
    results = await asyncio.gather(
        *(limiter.attempt("race@example.com", f"10.1.0.{n}") for n in range(20)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 5
    assert all(isinstance(r, LoginThrottled) for r in results if r is not None)


async def test_the_window_expires_and_refusals_do_not_extend_it(redis: Redis) -> None:
    limiter = _limiter(redis, max_per_account=2, window_s=1)
    await limiter.attempt("carol@example.com", "10.0.0.4")
    await limiter.attempt("carol@example.com", "10.0.0.4")
    for _ in range(3):  # an attacker hammering a locked account
        with pytest.raises(LoginThrottled):
            await limiter.attempt("carol@example.com", "10.0.0.4")
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.6)  # 1 s after the first failure, whatever came since
    await limiter.attempt("carol@example.com", "10.0.0.4")


async def test_emails_are_not_stored_in_redis(redis: Redis) -> None:
    prefix = f"test-login:{uuid.uuid4().hex}"
    limiter = LoginLimiter(redis, prefix=prefix)
    await limiter.attempt("private.person@example.com", "10.0.0.5")
    keys = [k.decode() async for k in redis.scan_iter(match=f"{prefix}:*")]
    assert len(keys) == 2 and not any("private.person" in k for k in keys)
    ttls = [await redis.ttl(k) for k in keys]
    assert all(0 < ttl <= 300 for ttl in ttls)


async def test_without_redis_logins_are_not_blocked() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    limiter = LoginLimiter(unreachable, max_per_account=1)
    for _ in range(3):
        await limiter.attempt("dave@example.com", "10.0.0.6")
    await limiter.succeeded("dave@example.com", "10.0.0.6")
    await unreachable.aclose()
