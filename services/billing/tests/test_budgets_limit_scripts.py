"""Budgets and quotas inside the Reserve script, against the real Redis: refusals, capping, the
one-capped-hold rule, release, settlement merges and reloads."""

from __future__ import annotations

import asyncio
import time

from billing_helpers import new_org
from redis.asyncio import Redis

from tollgate.billing.budgets.repository import LimitsSnapshot
from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore, LimitCheck, OrgSettlement, ReserveStatus
from tollgate.billing.metrics import BillingMetrics

FAR = time.time() + 3600
MONTH, DAY = "2026-11", "2026-11-23"


def check(key_id: int = 7, quota: int = 0) -> LimitCheck:
    return LimitCheck(key_id, MONTH, DAY, quota)


async def ready(store: HoldStore, org: str, *, balance: int = 1_000_000, **snap: object) -> None:
    await store.sync_wallet(org, balance, 1)
    await store.sync_limits(org, LimitsSnapshot(**snap), init=True)  # type: ignore[arg-type]


async def test_limits_must_be_loaded_before_a_limited_reserve(store: HoldStore) -> None:
    org = new_org()
    await store.sync_wallet(org, 100, 1)
    reply = await store.reserve(org, "r1", 10, FAR, limits=check())
    assert reply.status is ReserveStatus.LIMITS_NOT_CACHED
    assert await store.sync_limits(org, LimitsSnapshot(), init=False) is False  # refresh never loads
    assert await store.sync_limits(org, LimitsSnapshot(), init=True) is True
    assert (await store.reserve(org, "r1", 10, FAR, limits=check())).status is ReserveStatus.GRANTED


async def test_the_wallet_is_checked_first_and_never_capped(store: HoldStore) -> None:
    org = new_org()
    await ready(store, org, balance=50, budgets=[(0, "monthly", 1_000)])
    reply = await store.reserve(org, "r1", 60, FAR, limits=check())
    assert (reply.status, reply.reason, reply.balance_micros) == (
        ReserveStatus.REFUSED,
        "insufficient_credits",
        50,
    )


async def test_month_quota_caps_then_refuses(store: HoldStore) -> None:
    org = new_org()
    await ready(store, org, spent={(7, MONTH): 900})
    capped = await store.reserve(org, "r1", 300, FAR, limits=check(quota=1_000))
    assert (capped.status, capped.hold_micros) == (ReserveStatus.GRANTED, 100)  # what the quota still allows
    refused = await store.reserve(org, "r2", 1, FAR, limits=check(quota=1_000))
    assert (refused.status, refused.reason) == (ReserveStatus.REFUSED, "quota_exceeded")
    # another key of the org is not bound by key 7's quota
    assert (await store.reserve(org, "r3", 300, FAR, limits=check(key_id=8, quota=1_000))).hold_micros == 300
    wallet = await store.read_wallet(org)
    assert wallet is not None and wallet.held_micros == 600  # the wallet holds max_cost in full


async def test_one_capped_hold_per_counter_at_a_time(store: HoldStore) -> None:
    org = new_org()
    await ready(store, org, budgets=[(0, "monthly", 1_000)])
    assert (await store.reserve(org, "a", 400, FAR, limits=check())).hold_micros == 400
    first = await store.reserve(org, "b", 900, FAR, limits=check())
    assert (first.status, first.hold_micros) == (ReserveStatus.GRANTED, 600)
    assert await store.release(org, "a")  # 400 free again, but b is still a capped hold in flight
    second = await store.reserve(org, "c", 900, FAR, limits=check())
    assert (second.status, second.reason) == (ReserveStatus.REFUSED, "budget_exceeded")
    fits = await store.reserve(org, "d", 400, FAR, limits=check())  # fits whole: no capping needed
    assert (fits.status, fits.hold_micros) == (ReserveStatus.GRANTED, 400)
    assert await store.release(org, "b")
    assert (await store.reserve(org, "e", 900, FAR, limits=check())).hold_micros == 600
    limits = await store.read_limits(org)
    assert (limits[f"h:org:{MONTH}"], limits[f"c:org:{MONTH}"]) == ("1000", "1")


async def test_budgets_of_each_scope_and_period_refuse_with_budget_exceeded(store: HoldStore) -> None:
    org = new_org()
    await ready(
        store,
        org,
        budgets=[(7, "daily", 100), (0, "monthly", 10_000)],
        spent={(7, DAY): 100, (0, MONTH): 500},
    )
    refused = await store.reserve(org, "r1", 10, FAR, limits=check())
    assert (refused.status, refused.reason) == (ReserveStatus.REFUSED, "budget_exceeded")
    assert (await store.reserve(org, "r2", 10, FAR, limits=check(key_id=9))).status is ReserveStatus.GRANTED
    assert (await store.reserve(org, "free", 0, FAR, limits=check())).status is ReserveStatus.GRANTED


async def test_a_repeated_reserve_answers_the_same_capped_hold(store: HoldStore) -> None:
    org = new_org()
    await ready(store, org, budgets=[(0, "daily", 50)])
    first = await store.reserve(org, "r1", 80, FAR, limits=check())
    again = await store.reserve(org, "r1", 80, FAR, limits=check())
    assert first.hold_micros == again.hold_micros == 50 and again.status is ReserveStatus.GRANTED
    assert (await store.read_limits(org))[f"h:org:{DAY}"] == "50"


async def test_settlement_merges_spend_and_frees_the_counters(store: HoldStore) -> None:
    org = new_org()
    await ready(store, org, budgets=[(0, "monthly", 1_000)])
    await store.reserve(org, "h1", 700, FAR, limits=check())
    spent = {(0, MONTH): 650, (7, MONTH): 650, (0, DAY): 650, (7, DAY): 650}
    assert await store.settle([OrgSettlement(org, ["h1"], 999_350, 2, spent=spent)]) == 1
    limits = await store.read_limits(org)
    assert (limits[f"s:org:{MONTH}"], limits[f"h:org:{MONTH}"]) == ("650", "0")
    # an older total arriving late never lowers the counter
    await store.settle([OrgSettlement(org, [], None, 0, spent={(0, MONTH): 100})])
    assert (await store.read_limits(org))[f"s:org:{MONTH}"] == "650"
    capped = await store.reserve(org, "h2", 500, FAR, limits=check())
    assert capped.hold_micros == 350


async def test_a_reload_counts_open_holds_again_and_budget_versions_only_move_forward(
    store: HoldStore, redis: Redis
) -> None:
    org = new_org()
    await ready(store, org, budgets_version=2, budgets=[(0, "monthly", 1_000)])
    await store.reserve(org, "a", 300, FAR, limits=check())
    await store.reserve(org, "b", 900, FAR, limits=check())  # capped at 700
    await redis.delete(store.limits_key(org))  # evicted; the holds survive
    await store.settle([OrgSettlement(org, [], None, 0, spent={(0, MONTH): 10})])  # lands while unloaded
    await store.sync_limits(org, LimitsSnapshot(2, [(0, "monthly", 1_000)], {(0, MONTH): 5}), init=True)
    limits = await store.read_limits(org)
    assert (limits[f"h:org:{MONTH}"], limits[f"c:org:{MONTH}"], limits[f"s:org:{MONTH}"]) == (
        "1000",
        "1",
        "10",
    )
    await store.sync_limits(org, LimitsSnapshot(1, [(0, "monthly", 5_000)]), init=False)  # older config
    assert (await store.read_limits(org))["b:org:m"] == "1000"
    await store.sync_limits(org, LimitsSnapshot(3, []), init=False)  # the budget was removed
    assert "b:org:m" not in await store.read_limits(org)
    assert (await store.reserve(org, "c", 5_000, FAR, limits=check())).hold_micros == 5_000


async def test_fifty_concurrent_reserves_never_hold_more_than_the_budget(redis: Redis, prefix: str) -> None:
    org = new_org()
    store = HoldStore(redis, prefix=prefix)
    await ready(store, org, budgets=[(0, "monthly", 10_500)])
    results = await asyncio.gather(
        *(store.reserve(org, f"req-{i}", 1_000, FAR, limits=check()) for i in range(50))
    )
    granted = sorted(r.hold_micros for r in results if r.status is ReserveStatus.GRANTED)
    assert granted == [500] + [1_000] * 10  # ten whole holds and one capped at the 500 left
    assert {r.reason for r in results if r.status is ReserveStatus.REFUSED} == {"budget_exceeded"}


async def test_a_changed_quota_is_reported_once(store: HoldStore) -> None:
    org = new_org()
    await ready(store, org, quotas={7: 1_000})
    assert (await store.reserve(org, "r1", 1, FAR, limits=check(quota=1_000))).quota_changed is False
    assert (await store.reserve(org, "r2", 1, FAR, limits=check(quota=2_000))).quota_changed is True
    assert (await store.reserve(org, "r3", 1, FAR, limits=check(quota=2_000))).quota_changed is False
    assert (await store.reserve(org, "r4", 1, FAR, limits=check(key_id=8))).quota_changed is False


async def test_a_short_hold_on_any_counter_blocks_a_second_short_hold_on_a_shared_limit(
    store: HoldStore,
) -> None:
    org = new_org()
    await ready(store, org, budgets=[(7, "daily", 100), (0, "monthly", 1_000_000)])
    short = await store.reserve(org, "a", 300, FAR, limits=check())  # capped by key 7's daily budget
    assert (short.status, short.hold_micros) == (ReserveStatus.GRANTED, 100)
    # key 8's quota would cap this one too; the org budget both count against has a short hold open
    blocked = await store.reserve(org, "b", 300, FAR, limits=check(key_id=8, quota=200))
    assert (blocked.status, blocked.reason) == (ReserveStatus.REFUSED, "quota_exceeded")
    whole = await store.reserve(org, "c", 150, FAR, limits=check(key_id=8, quota=200))
    assert (whole.status, whole.hold_micros) == (ReserveStatus.GRANTED, 150)  # fits: no overshoot risk
    await store.release(org, "a")
    assert (await store.reserve(org, "d", 300, FAR, limits=check(key_id=8, quota=200))).hold_micros == 50


async def test_the_sweeper_gives_an_expired_short_hold_back_to_its_limits(
    store: HoldStore, metrics: BillingMetrics
) -> None:
    org = new_org()
    await ready(store, org, budgets=[(0, "daily", 100)])
    assert (await store.reserve(org, "stale", 300, time.time() - 1, limits=check())).hold_micros == 100
    holds = HoldService(store, lambda _org: None, metrics)  # type: ignore[arg-type, return-value]
    assert await holds.sweep_expired() >= 1
    assert metrics.holds_expired._value.get() >= 1  # type: ignore[attr-defined]
    limits = await store.read_limits(org)
    assert (limits[f"h:org:{DAY}"], limits[f"c:org:{DAY}"], limits[f"h:k7:{MONTH}"]) == ("0", "0", "0")
    assert (await store.reserve(org, "next", 300, FAR, limits=check())).hold_micros == 100


async def test_a_stock_of_holds_stops_where_a_budget_leaves_too_little_headroom(store: HoldStore) -> None:
    # wallet 1,000,000; org monthly budget 10,000 with 4,000 spent: 6,000 left. Holds of 50 are
    # stockable while 100 more would fit: after k holds 6,000 - 50k >= 5,000, so k <= 20.
    org = new_org()
    await ready(store, org, budgets=[(0, "monthly", 10_000)], spent={(0, MONTH): 4_000})
    ids = [f"hs_{i}" for i in range(30)]

    reply = await store.reserve_stock(org, ids, 50, FAR, 100, limits=check())

    assert (reply.placed, reply.code) == (20, 2)  # 20 kept, the 21st placed, found short, dropped
    wallet = await store.read_wallet(org)
    assert wallet is not None and wallet.held_micros == 20 * 50
    limits = await store.read_limits(org)
    assert limits[f"h:org:{MONTH}"] == str(20 * 50)  # the budget counts exactly the kept holds

    capped = await store.reserve_stock(org, ["hs_big"], 7_000, FAR, 100, limits=check())
    assert (capped.placed, capped.code) == (0, 2)  # capped at the budget's 5,000: never stocked
    refused = await store.reserve_stock(org, ["hs_huge"], 2_000_000, FAR, 100, limits=check())
    assert (refused.placed, refused.code, refused.reason) == (0, 0, "insufficient_credits")
    retried = await store.reserve_stock(org, ids[:3], 50, FAR, 100, limits=check())
    assert (retried.placed, retried.code) == (3, 1)  # already held: counted, nothing new held
    assert (await store.read_wallet(org)).held_micros == 20 * 50  # type: ignore[union-attr]


async def test_a_stock_counts_its_own_holds_against_a_quota_it_sees_once(store: HoldStore) -> None:
    """RESERVE_STOCK reads the limits once per script and adds its own holds to what it read: the
    fourth hold of 300 under a 1,000 quota is capped to 100 (short, so dropped), and the counters
    hold exactly the three kept."""
    org = new_org()
    await ready(store, org, budgets=[(7, "daily", 5_000)])
    quota = check(quota=1_000)
    reply = await store.reserve_stock(org, [f"q{i}" for i in range(6)], 300, FAR, 0, limits=quota)
    assert (reply.placed, reply.code, reply.quota_changed) == (3, 2, True)
    limits = await store.read_limits(org)
    assert [limits[f"{c}:k7:{p}"] for c in ("h", "c") for p in (MONTH, DAY)] == ["900", "900", "0", "0"]
    assert limits[f"h:org:{MONTH}"] == "900" and limits["q:7"] == "1000"
    assert (await store.read_wallet(org)).held_micros == 900  # type: ignore[union-attr]
    again = await store.reserve_stock(org, ["q9"], 100, FAR, 0, limits=quota)
    assert (again.placed, again.code, again.quota_changed) == (1, 1, False)
    refused = await store.reserve_stock(org, ["q10"], 100, FAR, 0, limits=quota)
    assert (refused.placed, refused.code, refused.reason) == (0, 0, "quota_exceeded")
