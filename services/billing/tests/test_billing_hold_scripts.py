"""The Lua scripts against the real Redis (random key namespace per test)."""

from __future__ import annotations

import asyncio
import time

from billing_helpers import new_org
from redis.asyncio import Redis

from tollgate.billing.holds.store import HoldStore, OrgSettlement, ReserveReply, ReserveStatus

FAR = time.time() + 3600


def brief(reply: ReserveReply) -> tuple[ReserveStatus, int]:
    return reply.status, reply.available_micros


async def test_reserve_on_an_uncached_wallet_asks_for_a_load(store: HoldStore) -> None:
    assert brief(await store.reserve(new_org(), "r1", 10, FAR)) == (ReserveStatus.NOT_CACHED, 0)


async def test_reserve_grants_only_what_is_available(store: HoldStore) -> None:
    org = new_org()
    await store.sync_wallet(org, 100, 1)
    assert brief(await store.reserve(org, "r1", 60, FAR)) == (ReserveStatus.GRANTED, 100)
    assert brief(await store.reserve(org, "r2", 41, FAR)) == (ReserveStatus.REFUSED, 40)
    assert brief(await store.reserve(org, "r3", 40, FAR)) == (ReserveStatus.GRANTED, 40)
    wallet = await store.read_wallet(org)
    assert wallet is not None
    assert (wallet.balance_micros, wallet.held_micros, wallet.available_micros) == (100, 100, 0)


async def test_reserve_is_idempotent_on_the_hold_id(store: HoldStore) -> None:
    org = new_org()
    await store.sync_wallet(org, 100, 1)
    first = await store.reserve(org, "req-1", 70, FAR)
    again = await store.reserve(org, "req-1", 70, FAR)
    assert brief(first) == brief(again) == (ReserveStatus.GRANTED, 100)
    assert first.hold_micros == again.hold_micros == 70
    wallet = await store.read_wallet(org)
    assert wallet is not None and wallet.held_micros == 70  # held once, not twice


async def test_release_is_idempotent_and_frees_the_amount(store: HoldStore) -> None:
    org = new_org()
    await store.sync_wallet(org, 100, 1)
    await store.reserve(org, "r1", 80, FAR)
    assert await store.release(org, "r1") is True
    assert await store.release(org, "r1") is False
    assert await store.release(org, "never-held") is False
    wallet = await store.read_wallet(org)
    assert wallet is not None and wallet.held_micros == 0
    assert await store.expired(FAR + 1) == []


async def test_zero_amount_holds_reserve_release_and_settle(store: HoldStore) -> None:
    org = new_org()
    await store.sync_wallet(org, 5, 1)
    assert (await store.reserve(org, "z1", 0, FAR)).status is ReserveStatus.GRANTED
    assert (await store.reserve(org, "z2", 0, FAR)).status is ReserveStatus.GRANTED
    assert await store.release(org, "z1") is True  # -0 must not reach HINCRBY
    assert await store.settle([OrgSettlement(org, ["z2"], balance_micros=5, version=2)]) == 1
    wallet = await store.read_wallet(org)
    assert wallet is not None and (wallet.held_micros, wallet.available_micros) == (0, 5)


async def test_fifty_concurrent_reserves_against_ten_grant_exactly_ten(redis: Redis, prefix: str) -> None:
    org = new_org()
    # separate connections so the calls really race inside Redis
    store = HoldStore(redis, prefix=prefix)
    await store.sync_wallet(org, 10 * 1_000, 1)
    results = await asyncio.gather(*(store.reserve(org, f"req-{i}", 1_000, FAR) for i in range(50)))
    granted = [r for r in results if r.status is ReserveStatus.GRANTED]
    assert len(granted) == 10
    assert sum(1 for r in results if r.status is ReserveStatus.REFUSED) == 40
    wallet = await store.read_wallet(org)
    assert wallet is not None and (wallet.held_micros, wallet.available_micros) == (10_000, 0)


async def test_sync_only_moves_forward_in_version(store: HoldStore) -> None:
    org = new_org()
    assert await store.sync_wallet(org, 500, 5) is True
    assert await store.sync_wallet(org, 900, 4) is False  # older: ignored
    assert await store.sync_wallet(org, 900, 5) is False  # same version: nothing new
    wallet = await store.read_wallet(org)
    assert wallet is not None and (wallet.balance_micros, wallet.version) == (500, 5)
    assert await store.sync_wallet(org, 200, 6) is True
    wallet = await store.read_wallet(org)
    assert wallet is not None and (wallet.balance_micros, wallet.version) == (200, 6)


async def test_sync_keeps_held_when_cached_and_recomputes_it_when_reloaded(
    store: HoldStore, redis: Redis
) -> None:
    org = new_org()
    await store.sync_wallet(org, 100, 1)
    await store.reserve(org, "a", 30, FAR)
    await store.reserve(org, "b", 20, FAR)
    await store.sync_wallet(org, 90, 2)
    wallet = await store.read_wallet(org)
    assert wallet is not None and (wallet.balance_micros, wallet.held_micros) == (90, 50)
    # the cached wallet is evicted; its holds survive and are summed again on reload
    await redis.delete(store.wallet_key(org))
    await store.release(org, "a")  # a release while uncached must not create a partial wallet
    assert await store.read_wallet(org) is None
    await store.sync_wallet(org, 90, 2)
    wallet = await store.read_wallet(org)
    assert wallet is not None and (wallet.held_micros, wallet.available_micros) == (20, 70)


async def test_settle_releases_holds_and_refreshes_atomically(store: HoldStore) -> None:
    org, other = new_org(), new_org()
    await store.sync_wallet(org, 1_000, 3)
    await store.sync_wallet(other, 50, 1)
    await store.reserve(org, "h1", 100, FAR)
    await store.reserve(org, "h2", 200, FAR)
    await store.reserve(other, "h3", 10, FAR)
    released = await store.settle(
        [
            OrgSettlement(org, ["h1", "h2", "gone"], balance_micros=700, version=5),
            OrgSettlement(other, ["h3"], balance_micros=None, version=0),  # no wallet change
        ]
    )
    assert released == 3
    wallet = await store.read_wallet(org)
    assert wallet is not None and (wallet.balance_micros, wallet.held_micros, wallet.version) == (700, 0, 5)
    wallet = await store.read_wallet(other)
    assert wallet is not None and (wallet.balance_micros, wallet.held_micros) == (50, 0)
    # a stale settlement (older version) still releases but never moves the balance back
    await store.reserve(org, "h4", 1, FAR)
    assert await store.settle([OrgSettlement(org, ["h4"], balance_micros=999, version=4)]) == 1
    wallet = await store.read_wallet(org)
    assert wallet is not None and (wallet.balance_micros, wallet.version) == (700, 5)


async def test_expired_lists_holds_past_their_expiry(store: HoldStore) -> None:
    org = new_org()
    await store.sync_wallet(org, 100, 1)
    now = time.time()
    await store.reserve(org, "old", 1, now - 10)
    await store.reserve(org, "new", 1, now + 600)
    assert await store.expired(now) == [(org, "old")]
