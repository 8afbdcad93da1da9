"""Rate limits (limits/): the GCRA cells on the test profile's real Redis, the local leases, the headers."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tollgate.gateway.limits.cells import RedisCells
from tollgate.gateway.limits.headers import rate_limit_headers
from tollgate.gateway.limits.leases import Limiter
from tollgate.gateway.limits.specs import DAY_S, DEFAULT_TIERS, MINUTE_S, Cost, Limit, Measure, Scope, Verdict

REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:26479/0")


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    prefix = f"test-rl:{uuid.uuid4().hex}"
    yield prefix
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def cells(redis: Redis, prefix: str) -> RedisCells:
    return RedisCells(redis, prefix=prefix)


def rpm(n: int, subject: str = "k1", scope: Scope = Scope.KEY) -> Limit:
    return Limit(scope, subject, Measure.REQUESTS, n, MINUTE_S, "requests per minute")


def tpm(n: int, subject: str = "k1") -> Limit:
    return Limit(Scope.KEY, subject, Measure.TOKENS, n, MINUTE_S, "tokens per minute")


# Per-day limits where a test counts exactly: no unit comes back while it runs.
def rpd(n: int, subject: str = "k1") -> Limit:
    return Limit(Scope.KEY, subject, Measure.REQUESTS, n, DAY_S, "requests per day")


def tpd(n: int, subject: str = "k1") -> Limit:
    return Limit(Scope.KEY, subject, Measure.TOKENS, n, DAY_S, "tokens per day")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_tiers_are_sloughgpts() -> None:
    free = DEFAULT_TIERS["free"].limits(Scope.KEY, "k")
    assert [(x.measure, x.limit, x.period_s) for x in free] == [
        (Measure.REQUESTS, 100, 60.0),
        (Measure.TOKENS, 10_000, 86_400.0),
    ]
    assert DEFAULT_TIERS["pro"].rpm == 1_000 and DEFAULT_TIERS["enterprise"].tpd == 1_000_000


async def test_a_limit_admits_its_burst_then_refuses_with_the_wait(cells: RedisCells) -> None:
    limit = rpm(5)
    verdicts = [await cells.take([limit], Cost()) for _ in range(5)]
    assert all(v.allowed for v in verdicts)
    assert [v.remaining for v in verdicts] == [4, 3, 2, 1, 0]
    refused = await cells.take([limit], Cost())
    assert not refused.allowed and refused.limit == limit and not refused.never
    assert 11.0 <= refused.retry_after_s <= 12.1  # one unit comes back every 60 / 5 s
    assert 59.0 <= refused.reset_s <= 60.1


async def test_all_or_nothing_across_limits(cells: RedisCells) -> None:
    key, org = rpm(10), rpm(2, "org1", Scope.ORG)
    assert (await cells.take([key, org], Cost())).allowed
    assert (await cells.take([key, org], Cost())).allowed
    refused = await cells.take([key, org], Cost())
    assert not refused.allowed and refused.limit == org
    # the key's own limit was not charged for the refused request: 8 left of 10
    alone = await cells.take([key], Cost())
    assert alone.allowed and alone.remaining == 7


async def test_token_costs_and_a_request_larger_than_the_limit(cells: RedisCells) -> None:
    tokens = tpm(1_000)
    assert (await cells.take([rpm(100), tokens], Cost(1, 600))).allowed
    refused = await cells.take([rpm(100), tokens], Cost(1, 600))
    assert not refused.allowed and refused.limit == tokens and not refused.never
    never = await cells.take([tokens], Cost(1, 1_001))
    assert not never.allowed and never.never


async def test_adjust_gives_back_and_takes_more(cells: RedisCells) -> None:
    tokens = tpd(1_000)
    assert (await cells.take([tokens], Cost(1, 900))).remaining == 100
    await cells.adjust([tokens], [-800])  # the answer used 100 of the 900 estimated
    assert (await cells.take([tokens], Cost(1, 500))).remaining == 400
    await cells.adjust([tokens], [600])  # the next one used 1,100 of the 500 estimated
    refused = await cells.take([tokens], Cost(1, 10))
    assert not refused.allowed


async def test_leases_take_ahead_for_a_busy_key_and_never_exceed_the_limit(cells: RedisCells) -> None:
    clock = Clock()
    limiter = Limiter(cells, max_lease=8, lease_ttl_s=1.0, clock=clock)
    limit = [rpd(2_000)]
    calls = 0
    real_take = cells.take

    async def counted(limits: list[Limit], cost: Cost) -> Verdict:
        nonlocal calls
        calls += 1
        return await real_take(limits, cost)

    cells.take = counted  # type: ignore[method-assign]
    allowed = [(await limiter.acquire("k1", limit, Cost())).allowed for _ in range(100)]
    assert all(allowed)
    assert calls < 30  # leases of up to 8 requests: far fewer round trips than requests
    await cells.take(limit, Cost(1_850))  # another replica takes most of what is left
    refused = 0
    for _ in range(100):
        refused += not (await limiter.acquire("k1", limit, Cost())).allowed
    assert refused == 50  # 2,000 a day, not one more, however the leases fell


async def test_an_expired_lease_gives_its_leftovers_back(cells: RedisCells) -> None:
    clock = Clock()
    limiter = Limiter(cells, max_lease=8, lease_ttl_s=1.0, clock=clock)
    limit = [rpd(100)]
    for _ in range(5):  # leases of 1, 2 and 4: the last one still holds 2 when it expires
        await limiter.acquire("k1", limit, Cost())
    assert (await cells.take(limit, Cost(0))).remaining == 100 - 7
    clock.now += 5  # the lease expires
    await limiter.close()
    verdict = await cells.take(limit, Cost())
    assert verdict.remaining == 100 - 6  # 5 used, this one: the 2 leased and unused came back


async def test_the_sweeper_returns_a_quiet_keys_leftovers(cells: RedisCells) -> None:
    clock = Clock()
    limiter = Limiter(cells, max_lease=8, lease_ttl_s=1.0, clock=clock)
    limit = [rpd(100)]
    for _ in range(5):
        await limiter.acquire("k1", limit, Cost())
    limiter.sweep()  # not expired yet: kept
    assert (await cells.take(limit, Cost(0))).remaining == 100 - 7
    clock.now += 1.5
    limiter.sweep()
    await limiter.close()
    assert (await cells.take(limit, Cost(0))).remaining == 100 - 5


async def test_concurrent_requests_share_one_round_trip_per_lease(cells: RedisCells) -> None:
    """Sixteen requests at once on one key (concurrency 16): one of them takes the lease, the others
    wait for it instead of each asking Redis; no lease is lost to another's overwrite."""
    limiter = Limiter(cells, max_lease=32)
    limit = [rpd(10_000)]
    calls = 0
    real_take = cells.take

    async def counted(limits: list[Limit], cost: Cost) -> Verdict:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)  # a round trip's time, so the others arrive while it is out
        return await real_take(limits, cost)

    cells.take = counted  # type: ignore[method-assign]
    for _ in range(4):
        verdicts = await asyncio.gather(*(limiter.acquire("k1", limit, Cost()) for _ in range(16)))
        assert all(v.allowed for v in verdicts)
    assert calls <= 12  # 64 requests: leases of 1, 2, 4, ... 32, not a round trip each
    await limiter.close()
    assert (await real_take(limit, Cost(0))).remaining == 10_000 - 64  # unused lease units came back


async def test_a_busy_keys_true_ups_go_to_its_lease_and_reach_redis_when_it_ends(cells: RedisCells) -> None:
    clock = Clock()
    limiter = Limiter(cells, max_lease=8, clock=clock)
    limits = [rpd(1_000), tpd(100_000)]
    for _ in range(7):  # leases of 1, 2 and 4 requests of 100 tokens each
        assert (await limiter.acquire("k1", limits, Cost(1, 100))).allowed
    adjusted = 0
    real_adjust = cells.adjust

    async def counted(limits: list[Limit], units: list[int]) -> None:
        nonlocal adjusted
        adjusted += 1
        await real_adjust(limits, units)

    cells.adjust = counted  # type: ignore[method-assign]
    for _ in range(6):  # six answers used 10 of their 100 tokens, the seventh 400
        limiter.true_up("k1", limits, estimated_tokens=100, actual_tokens=10)
    limiter.true_up("k1", limits, estimated_tokens=100, actual_tokens=400)
    assert adjusted == 0  # no round trip per answer
    await limiter.close()
    assert adjusted == 1  # the lease's end settles it all at once
    tokens = await cells.take([tpd(100_000)], Cost(0, 0))
    assert tokens.remaining == 100_000 - (6 * 10 + 400)  # what the 7 answers used
    assert (await cells.take([rpd(1_000)], Cost(0))).remaining == 1_000 - 7


async def test_true_ups_that_come_while_the_next_lease_is_taken_go_to_that_lease(cells: RedisCells) -> None:
    """At concurrency 16 answers keep coming while a busy key's next lease is out at Redis: their
    true-ups wait for that lease instead of each making a round trip of its own."""
    clock = Clock()
    limiter = Limiter(cells, max_lease=8, clock=clock)
    limits = [rpd(1_000), tpd(100_000)]
    for _ in range(5):
        assert (await limiter.acquire("k1", limits, Cost(1, 100))).allowed
    gate = asyncio.Event()
    real_take, real_adjust = cells.take, cells.adjust
    adjusted: list[list[int]] = []

    async def slow_take(limits: list[Limit], cost: Cost) -> Verdict:
        await gate.wait()
        return await real_take(limits, cost)

    async def counted(limits: list[Limit], units: list[int]) -> None:
        adjusted.append(list(units))
        await real_adjust(limits, units)

    cells.take = slow_take  # type: ignore[method-assign]
    cells.adjust = counted  # type: ignore[method-assign]
    clock.now += 2  # the lease expired: the next request takes a new one
    taking = asyncio.create_task(limiter.acquire("k1", limits, Cost(1, 100)))
    await asyncio.sleep(0.01)
    given_back = len(adjusted)  # the expired lease's leftovers
    for _ in range(5):  # the five earlier answers used 10 of their 100 tokens each
        limiter.true_up("k1", limits, estimated_tokens=100, actual_tokens=10)
    await asyncio.sleep(0.01)
    assert len(adjusted) == given_back  # no round trip per answer
    gate.set()
    assert (await taking).allowed
    await asyncio.sleep(0.01)
    assert len(adjusted) == given_back  # they went to the new lease
    await limiter.close()
    assert len(adjusted) == given_back + 1  # and reach Redis with its leftovers
    tokens = await real_take([tpd(100_000)], Cost(0, 0))
    assert tokens.remaining == 100_000 - (5 * 10 + 100)  # five answers' actual use, the sixth's estimate
    assert (await real_take([rpd(1_000)], Cost(0))).remaining == 1_000 - 6


async def test_a_true_up_waiting_for_a_lease_that_was_refused_goes_to_redis(cells: RedisCells) -> None:
    clock = Clock()
    limiter = Limiter(cells, max_lease=1, clock=clock)
    limits = [rpd(1), tpd(1_000)]
    assert (await limiter.acquire("k1", limits, Cost(1, 500))).allowed
    gate = asyncio.Event()
    real_take = cells.take

    async def slow_take(limits: list[Limit], cost: Cost) -> Verdict:
        await gate.wait()
        return await real_take(limits, cost)

    cells.take = slow_take  # type: ignore[method-assign]
    taking = asyncio.create_task(limiter.acquire("k1", limits, Cost(1, 100)))
    await asyncio.sleep(0.01)
    limiter.true_up("k1", limits, estimated_tokens=500, actual_tokens=200)
    gate.set()
    assert not (await taking).allowed  # one request a day: refused, so no lease to carry it
    await limiter.close()
    assert (await real_take([tpd(1_000)], Cost(0, 0))).remaining == 1_000 - 200


async def test_two_replicas_share_one_limit(redis: Redis, prefix: str) -> None:
    """Two limiters on the same Redis (two gateway processes): together they admit the limit."""
    limit = [rpd(600)]
    replicas = [Limiter(RedisCells(redis, prefix=prefix), max_lease=16) for _ in range(2)]

    async def flood(limiter: Limiter) -> int:
        return sum([(await limiter.acquire("k1", limit, Cost())).allowed for _ in range(400)])

    admitted = await asyncio.gather(*(flood(r) for r in replicas))
    assert sum(admitted) == 600 and min(admitted) > 0


async def test_a_refusal_is_remembered_until_its_retry_time(cells: RedisCells) -> None:
    clock = Clock()
    limiter = Limiter(cells, clock=clock)
    limit = [rpm(1)]
    assert (await limiter.acquire("k1", limit, Cost())).allowed
    first = await limiter.acquire("k1", limit, Cost())
    assert not first.allowed
    calls = 0

    async def counted(limits: list[Limit], cost: Cost) -> Verdict:
        nonlocal calls
        calls += 1
        raise AssertionError("a remembered refusal makes no round trip")

    cells.take = counted  # type: ignore[method-assign]
    clock.now += 0.5
    again = await limiter.acquire("k1", limit, Cost())
    assert not again.allowed and calls == 0
    assert again.retry_after_s == pytest.approx(first.retry_after_s - 0.5)
    clock.now += 0.6  # remembered for a second at most: then Redis is asked again
    with pytest.raises(AssertionError, match="no round trip"):
        await limiter.acquire("k1", limit, Cost())


async def test_a_true_up_that_gives_back_forgets_the_refusal(cells: RedisCells) -> None:
    limiter = Limiter(cells, max_lease=1)
    limits = [tpd(1_000)]
    assert (await limiter.acquire("k1", limits, Cost(1, 900))).allowed
    assert not (await limiter.acquire("k1", limits, Cost(1, 500))).allowed
    limiter.true_up("k1", limits, estimated_tokens=900, actual_tokens=100)
    await limiter.close()
    assert (await limiter.acquire("k1", limits, Cost(1, 500))).allowed


async def test_true_up_moves_the_token_limits_only(cells: RedisCells) -> None:
    limiter = Limiter(cells, max_lease=1)
    limits = [rpd(100), tpd(1_000)]
    assert (await limiter.acquire("k1", limits, Cost(1, 100))).allowed
    limiter.true_up("k1", limits, estimated_tokens=100, actual_tokens=700)
    await limiter.close()
    verdict = await cells.take(limits, Cost(1, 0))
    assert verdict.allowed
    tokens = await cells.take([tpd(1_000)], Cost(1, 301))
    assert not tokens.allowed  # 700 used: 300 left
    requests = await cells.take([rpd(100)], Cost())
    assert requests.remaining == 97


def test_headers_of_an_allowed_and_a_refused_request() -> None:
    limit = rpm(100)
    allowed = rate_limit_headers(Verdict(True, limit, 42, 30.2), now=1_000.0)
    assert allowed == {
        "x-ratelimit-limit": "100",
        "x-ratelimit-remaining": "42",
        "x-ratelimit-reset": "1031",
        "x-ratelimit-retry-after": "0",
    }
    refused = rate_limit_headers(Verdict(False, limit, 0, 60.0, 0.4), now=1_000.0)
    assert refused["x-ratelimit-retry-after"] == "1" and refused["retry-after"] == "1"
    assert rate_limit_headers(Verdict(True, None, 0, 0.0)) == {}
