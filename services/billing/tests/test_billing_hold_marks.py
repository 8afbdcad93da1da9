"""Marked holds (docs/billing.md, "Holds at answer time") against the real Redis: a mark lowers the
hold on the wallet and on every limit at once, ends a short hold's capping, is idempotent, is
removed with its hold, and makes the sweeper publish the kept usage event instead of releasing."""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence

from billing_helpers import new_org
from redis.asyncio import Redis

from tollgate.billing.budgets.repository import LimitsSnapshot
from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore, LimitCheck, MarkRecord, OrgSettlement, ReserveStatus
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.wallets.repository import WalletState
from tollgate.contracts.v1 import billing_pb2

FAR = time.time() + 3600
MONTH, DAY = "2026-11", "2026-11-23"


def mark(org: str, hold_id: str, cost: int) -> MarkRecord:
    payload = billing_pb2.HoldMark(
        org_id=org, hold_id=hold_id, cost_micros=cost, usage_event=b"event-" + hold_id.encode()
    )
    return MarkRecord(org, hold_id, cost, base64.b64encode(payload.SerializeToString()).decode())


async def wallet(store: HoldStore, org: str) -> tuple[int, int]:
    cached = await store.read_wallet(org)
    assert cached is not None
    return cached.balance_micros, cached.held_micros


async def test_a_mark_lowers_the_hold_to_the_actual_cost_at_once(store: HoldStore) -> None:
    org = new_org()
    await store.sync_wallet(org, 20_000_000, 1)  # 20 credits
    assert (await store.reserve(org, "r1", 12_300_000, FAR)).status is ReserveStatus.GRANTED
    refused = await store.reserve(org, "r2", 12_300_000, FAR)
    assert (refused.status, refused.reason) == (ReserveStatus.REFUSED, "insufficient_credits")
    assert await store.mark([mark(org, "r1", 40_000)], FAR) == 1
    assert await wallet(store, org) == (20_000_000, 40_000)
    # the key's next back-to-back request is covered by what is really left
    assert (await store.reserve(org, "r2", 12_300_000, FAR)).status is ReserveStatus.GRANTED
    assert await wallet(store, org) == (20_000_000, 12_340_000)


async def test_a_mark_is_idempotent_and_leaves_settled_holds_alone(store: HoldStore) -> None:
    org = new_org()
    await store.sync_wallet(org, 1_000, 1)
    await store.reserve(org, "r1", 600, FAR)
    assert await store.mark([mark(org, "r1", 100)], FAR) == 1
    assert await store.mark([mark(org, "r1", 300)], FAR) == 0  # the first mark wins
    assert await wallet(store, org) == (1_000, 100)
    # settlement drops the hold and its mark together
    await store.settle([OrgSettlement(org, ["r1"], 900, 2)])
    assert await wallet(store, org) == (900, 0)
    assert await store.read_mark(org, "r1") is None
    assert await store.mark([mark(org, "r1", 100)], FAR) == 0  # late: nothing held, nothing kept
    assert await store.read_mark(org, "r1") is None
    assert await wallet(store, org) == (900, 0)


async def test_a_mark_moves_every_limit_counter_and_ends_the_short_hold(
    store: HoldStore, redis: Redis
) -> None:
    org = new_org()
    await store.sync_wallet(org, 10_000, 1)
    await store.sync_limits(
        org, LimitsSnapshot(budgets=[(0, "monthly", 1_000)], spent={(0, MONTH): 700}), init=True
    )
    check = LimitCheck(7, MONTH, DAY)
    capped = await store.reserve(org, "r1", 500, FAR, limits=check)
    assert (capped.status, capped.hold_micros) == (ReserveStatus.GRANTED, 300)  # short: the budget caps it
    # while the short hold is open, a request that would need capping is refused
    assert (await store.reserve(org, "r2", 200, FAR, limits=check)).status is ReserveStatus.REFUSED
    limits = await store.read_limits(org)
    assert (limits[f"h:org:{MONTH}"], limits[f"c:org:{MONTH}"]) == ("300", "1")
    assert await store.mark([mark(org, "r1", 120)], FAR) == 1
    limits = await store.read_limits(org)
    assert (limits[f"h:org:{MONTH}"], limits[f"c:org:{MONTH}"], limits[f"h:k7:{DAY}"]) == ("120", "0", "120")
    assert await wallet(store, org) == (10_000, 120)
    # its cost is known now: 1,000 - 700 - 120 = 180 left, and a request that fits whole is admitted
    assert (await store.reserve(org, "r3", 180, FAR, limits=check)).hold_micros == 180
    assert await store.release(org, "r1") is True
    limits = await store.read_limits(org)
    assert limits[f"h:org:{MONTH}"] == "180" and limits[f"c:org:{MONTH}"] == "0"


async def test_a_wallet_reloaded_after_eviction_counts_marked_holds_at_their_cost(
    store: HoldStore, redis: Redis
) -> None:
    org = new_org()
    await store.sync_wallet(org, 1_000, 1)
    await store.reserve(org, "r1", 600, FAR)
    await store.mark([mark(org, "r1", 50)], FAR)
    await redis.delete(store.wallet_key(org))
    await store.sync_wallet(org, 1_000, 1)
    assert await wallet(store, org) == (1_000, 50)


class Published:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.payloads: list[str] = []

    async def __call__(self, payloads: Sequence[str]) -> None:
        if self.fail:
            raise ConnectionError("kafka down")
        self.payloads.extend(payloads)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def load(org_id: str) -> WalletState:
    return WalletState(org_id, 10_000, 1)


async def test_the_sweeper_publishes_a_marked_hold_and_releases_an_unmarked_one(
    store: HoldStore, metrics: BillingMetrics
) -> None:
    org, clock, published = new_org(), Clock(1_000_000.0), Published(fail=True)
    holds = HoldService(
        store,
        load,
        metrics,
        hold_ttl_seconds=600,
        mark_grace_seconds=30,
        publish_marks=published,
        clock=clock,
    )
    assert (await holds.reserve(org, "answered", 500)).granted
    assert (await holds.reserve(org, "never-answered", 500)).granted
    holds.mark([mark(org, "answered", 70)])
    assert await holds.marks.write_all() == 1
    clock.now += 31  # past the mark's grace, long before the TTL
    assert await holds.sweep_expired() == 1  # found, but Kafka is down: kept for later
    assert published.payloads == [] and metrics.marks_republished._value.get() == 0
    assert (await holds.balance(org)).held_micros == 570
    clock.now += 31
    published.fail = False
    assert await holds.sweep_expired() == 1
    [payload] = published.payloads
    kept = billing_pb2.HoldMark.FromString(base64.b64decode(payload))
    assert (kept.hold_id, kept.cost_micros, kept.usage_event) == ("answered", 70, b"event-answered")
    assert (await holds.balance(org)).held_micros == 570  # still held: its settlement drops it
    clock.now += 600  # the unmarked hold's TTL: released, counted
    assert await holds.sweep_expired() == 2  # the unmarked one released, the marked one published again
    assert metrics.holds_expired._value.get() == 1
    assert (await holds.balance(org)).held_micros == 70
    await store.settle([OrgSettlement(org, ["answered"], 9_930, 2)])
    assert (await holds.balance(org)).held_micros == 0
    clock.now += 60
    assert await holds.sweep_expired() == 0  # nothing left to publish or release


async def test_a_reserve_that_would_be_refused_first_writes_the_orgs_pending_marks(
    store: HoldStore, metrics: BillingMetrics
) -> None:
    org = new_org()
    holds = HoldService(store, load, metrics)  # its flusher is not running: marks only wait
    assert (await holds.reserve(org, "first", 8_000)).granted
    holds.mark([mark(org, "first", 100)])
    assert holds.marks.waiting(org)
    assert (await store.read_wallet(org)).held_micros == 8_000  # type: ignore[union-attr]
    # 2,000 available before the mark: the Reserve writes the org's marks, then asks again
    assert (await holds.reserve(org, "second", 8_000)).granted
    assert not holds.marks.waiting(org)
    assert metrics.reserve_retried_after_marks._value.get() == 1
    assert (await holds.balance(org)).held_micros == 8_100
    # a balance read writes them too
    holds.mark([mark(org, "second", 50)])
    assert (await holds.balance(org)).held_micros == 150


class FlakyStore(HoldStore):
    """The real store, whose mark writes fail while `down`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        super().__init__(redis, prefix=prefix)
        self.down = True

    async def mark(self, marks: Sequence[MarkRecord], expires_at: float) -> int:
        if self.down:
            raise ConnectionError("redis away")
        return await super().mark(marks, expires_at)


async def test_marks_wait_while_redis_is_away_and_are_written_when_it_is_back(
    metrics: BillingMetrics, redis: Redis, prefix: str
) -> None:
    org, store = new_org(), FlakyStore(redis, prefix)
    holds = HoldService(store, load, metrics)
    assert (await holds.reserve(org, "a", 1_000)).granted
    holds.mark([mark(org, "a", 10)])
    try:
        await holds.marks.write_all()
        raise AssertionError("the write should have failed")
    except ConnectionError:
        pass
    assert holds.marks.waiting(org)
    store.down = False
    assert await holds.marks.write_all() == 1
    assert (await holds.balance(org)).held_micros == 10


async def test_a_hold_may_ask_for_a_longer_life_than_the_default_ttl(
    store: HoldStore, metrics: BillingMetrics
) -> None:
    org, clock = new_org(), Clock(1_000_000.0)
    holds = HoldService(store, load, metrics, hold_ttl_seconds=600, clock=clock)
    assert (await holds.reserve(org, "training", 1_000, ttl_seconds=86_400)).granted
    assert (await holds.reserve(org, "chat", 1_000)).granted
    clock.now += 601
    assert await holds.sweep_expired() == 1  # only the chat hold: the training hold lives a day
    assert (await holds.balance(org)).held_micros == 1_000


async def test_batches_of_marks_and_settlements_move_the_counters_as_one_hold_at_a_time_would(
    store: HoldStore,
) -> None:
    """MARK and SETTLE sum a batch's changes per counter and write each once: the totals must be
    those of the holds still open, short holds included, with ids already gone in the batch."""
    org = new_org()
    await store.sync_wallet(org, 100_000, 1)
    await store.sync_limits(org, LimitsSnapshot(budgets=[(0, "monthly", 10_000)]), init=True)
    check = LimitCheck(7, MONTH, DAY)
    for i in range(20):
        assert (await store.reserve(org, f"h{i}", 400, FAR, limits=check)).hold_micros == 400
    big = await store.reserve(org, "big", 5_000, FAR, limits=check)
    assert big.hold_micros == 2_000  # short: the budget's last 2,000
    counters = [f"h:org:{MONTH}", f"h:org:{DAY}", f"h:k7:{MONTH}", f"h:k7:{DAY}"]
    shorts = [f"c:org:{MONTH}", f"c:org:{DAY}", f"c:k7:{MONTH}", f"c:k7:{DAY}"]

    async def totals() -> tuple[set[str], set[str], int]:
        limits = await store.read_limits(org)
        return {limits[f] for f in counters}, {limits[f] for f in shorts}, (await wallet(store, org))[1]

    assert await totals() == ({"10000"}, {"1"}, 8_000 + 5_000)
    marks = [mark(org, f"h{i}", 100) for i in range(10)] + [mark(org, "big", 1_500), mark(org, "gone", 5)]
    assert await store.mark(marks, FAR) == 11
    assert await totals() == ({str(10 * 100 + 10 * 400 + 1_500)}, {"0"}, 6_500)
    ids = [f"h{i}" for i in range(15)] + ["gone", "h3"]
    assert await store.settle([OrgSettlement(org, ids, 99_000, 2)]) == 15
    assert await totals() == ({str(5 * 400 + 1_500)}, {"0"}, 3_500)
    rest = [*(f"h{i}" for i in range(15, 20)), "big"]
    assert await store.settle([OrgSettlement(org, rest, 98_000, 3)]) == 6
    assert await totals() == ({"0"}, {"0"}, 0)
