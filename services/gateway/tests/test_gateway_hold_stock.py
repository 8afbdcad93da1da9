"""Hold stock: which holds are kept, used, refused and given back (billing is a fake here; the real
round trip is covered by tests/integration/test_hold_stock.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
import pytest
from prometheus_client import CollectorRegistry

from tollgate.common.auth_client import Principal
from tollgate.contracts.v1 import billing_pb2
from tollgate.gateway.completions.hold_stock import HoldStock
from tollgate.gateway.metrics import GatewayMetrics

KEY_A = Principal(1, "org-1", "user-1", "user", 0, ("read", "write"), "tg_a", 0, 0)
KEY_B = Principal(2, "org-1", "user-2", "user", 0, ("read", "write"), "tg_b", 0, 0)


@dataclass
class StockBilling:
    stockable: bool = True  # billing's answer to a request's own Reserve
    stock_limit: int = 10**6  # holds ReserveStock places before it stops
    stopped: str = "not_stockable"  # ... and why it stops
    failing: bool = False
    gate: asyncio.Event | None = None  # set: ReserveStock answers only once the test opens it
    reserved: list[str] = field(default_factory=list)  # a request's own holds
    stock_calls: list[list[str]] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    async def reserve(
        self, principal: Principal, request_id: str, max_cost_micros: int, model: str
    ) -> billing_pb2.ReserveResponse:
        self.reserved.append(request_id)
        return billing_pb2.ReserveResponse(
            granted=True, hold_id=request_id, hold_micros=max_cost_micros, stockable=self.stockable
        )

    async def reserve_stock(
        self, principal: Principal, hold_ids: list[str], max_cost_micros: int, model: str
    ) -> tuple[list[str], str]:
        self.stock_calls.append(list(hold_ids))
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
        placed = hold_ids[: self.stock_limit]
        self.stock_limit -= len(placed)
        return placed, "" if len(placed) == len(hold_ids) else self.stopped

    async def release(self, org_id: str, hold_id: str) -> bool:
        self.released.append(hold_id)
        return True

    @property
    def stocked(self) -> list[str]:
        return [h for call in self.stock_calls for h in call]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _stock(billing: StockBilling, clock: Clock, depth: int = 4) -> tuple[HoldStock, CollectorRegistry]:
    registry = CollectorRegistry()
    return HoldStock(billing, GatewayMetrics(registry), depth=depth, clock=clock), registry


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _count(registry: CollectorRegistry, outcome: str) -> float:
    return registry.get_sample_value("gateway_hold_stock_total", {"outcome": outcome}) or 0.0


async def _request(stock: HoldStock, billing: StockBilling, principal: Principal, cost: int) -> str:
    """What ChatCompletions does: a stocked hold, else its own Reserve and billing's answer."""
    taken = stock.take(principal, cost, "m")
    if taken is not None:
        return taken
    reply = await billing.reserve(principal, f"req-{len(billing.reserved)}", cost, "m")
    stock.learn(principal, cost, "m", reply.stockable)
    return reply.hold_id


async def _busy(stock: HoldStock, billing: StockBilling, clock: Clock, principal: Principal = KEY_A) -> None:
    """Two requests 0.1 s apart: the second finds the key busy and billing's hold stockable."""
    await _request(stock, billing, principal, 100)
    clock.now += 0.1
    await _request(stock, billing, principal, 100)
    await _settle()


async def test_a_busy_key_gets_stocked_holds_in_batches_and_uses_them(clock: Clock) -> None:
    billing = StockBilling()
    stock, registry = _stock(billing, clock)

    await _request(stock, billing, KEY_A, 100)
    await _settle()
    assert billing.stock_calls == []  # a lone request stocks nothing

    clock.now += 0.1
    second = await _request(stock, billing, KEY_A, 100)
    await _settle()
    assert second == "req-1"
    assert [len(c) for c in billing.stock_calls] == [4]  # depth 4, in one call
    assert all(h.startswith("hs_") for h in billing.stocked)

    used = []
    for _ in range(2):
        clock.now += 0.01
        used.append(await _request(stock, billing, KEY_A, 100))
        await _settle()
    assert used == billing.stock_calls[0][:2]
    # 2 left: at half the depth it asks for the 2 missing ones, in one call
    assert [len(c) for c in billing.stock_calls] == [4, 2]
    assert len(billing.reserved) == 2  # no Reserve of its own since the stock is there
    assert _count(registry, "hit") == 2 and _count(registry, "placed") == 6
    assert billing.released == []


async def test_stock_is_per_key_and_never_used_for_a_bigger_request(clock: Clock) -> None:
    billing = StockBilling()
    stock, registry = _stock(billing, clock, depth=1)
    await _busy(stock, billing, clock)
    [stocked] = billing.stocked

    assert stock.take(KEY_B, 100, "m") is None  # another key of the same org: not its hold
    clock.now += 0.1
    assert stock.take(KEY_A, 101, "m") is None  # costs more than the stocked hold covers
    await _settle()
    assert billing.released == [stocked] and _count(registry, "too_small") == 1


async def test_no_stock_while_billing_says_not_stockable(clock: Clock) -> None:
    billing = StockBilling(stockable=False)
    stock, _ = _stock(billing, clock)
    await _busy(stock, billing, clock)
    clock.now += 0.1
    await _request(stock, billing, KEY_A, 100)
    await _settle()
    assert billing.stock_calls == [] and len(billing.reserved) == 3


async def test_a_stock_call_that_stops_early_ends_the_refills_until_billing_says_otherwise(
    clock: Clock,
) -> None:
    billing = StockBilling(stock_limit=1)  # billing places one, then the org is near a limit
    stock, registry = _stock(billing, clock)
    await _busy(stock, billing, clock)
    assert [len(c) for c in billing.stock_calls] == [4] and _count(registry, "unstockable") == 1
    billing.stockable = False  # near the limit, billing's own Reserves say so too
    misses = _count(registry, "miss")

    clock.now += 0.01
    hit = await _request(stock, billing, KEY_A, 100)
    assert hit == billing.stock_calls[0][0]  # the one placed is used
    for _ in range(2):
        clock.now += 0.01
        await _request(stock, billing, KEY_A, 100)
        await _settle()
    assert len(billing.stock_calls) == 1  # no refills: billing said not stockable
    assert _count(registry, "miss") == misses  # nor misses: the key is not stocked now

    billing.stockable, billing.stopped, billing.stock_limit = True, "insufficient_credits", 0
    clock.now += 0.01
    await _request(stock, billing, KEY_A, 100)  # its own Reserve says stockable again: refill
    await _settle()
    assert len(billing.stock_calls) == 2 and _count(registry, "refused") == 1


async def test_a_failed_stock_call_gives_back_whatever_billing_may_have_placed(clock: Clock) -> None:
    billing = StockBilling(failing=True)
    stock, registry = _stock(billing, clock)
    await _busy(stock, billing, clock)
    assert sorted(billing.released) == sorted(billing.stocked) and _count(registry, "error") == 1
    clock.now += 0.01
    assert stock.take(KEY_A, 100, "m") is None


async def test_old_holds_are_released_never_used(clock: Clock) -> None:
    billing = StockBilling()
    stock, registry = _stock(billing, clock)
    await _busy(stock, billing, clock)

    clock.now += 1.5  # past the 1 s max age
    assert stock.sweep() == 4
    await _settle()
    assert sorted(billing.released) == sorted(billing.stocked) and _count(registry, "expired") == 4
    assert stock.take(KEY_A, 100, "m") is None


async def test_close_gives_every_stocked_hold_back(clock: Clock) -> None:
    billing = StockBilling()
    stock, _ = _stock(billing, clock)
    await _busy(stock, billing, clock)

    await stock.close()

    assert sorted(billing.released) == sorted(billing.stocked)


def test_depth_zero_turns_the_stock_off(clock: Clock) -> None:
    stock, _ = _stock(StockBilling(), clock, depth=0)
    assert stock.enabled is False


async def test_a_fast_key_is_stocked_for_its_rate_up_to_the_max_depth_and_a_slow_one_at_the_depth(
    clock: Clock,
) -> None:
    """depth 4, max 12, covering 5 ms: a key every 0.5 ms needs 10 holds, one every 1 ms 5, one
    every 0.1 ms 50 (capped at 12); a key every 100 ms stays at the depth."""
    billing = StockBilling()
    registry = CollectorRegistry()
    stock = HoldStock(billing, GatewayMetrics(registry), depth=4, max_depth=12, cover_s=0.005, clock=clock)

    async def burst(principal: Principal, gap_s: float, requests: int) -> None:
        for _ in range(requests):
            await _request(stock, billing, principal, 100)
            await _settle()
            clock.now += gap_s

    await burst(KEY_A, 0.0005, 2)
    assert [len(c) for c in billing.stock_calls] == [10]  # 5 ms at one request every 0.5 ms
    await burst(KEY_B, 0.1, 2)
    assert [len(c) for c in billing.stock_calls] == [10, 4]  # the depth: 0.1 s between requests
    await burst(KEY_A, 0.0001, 40)
    assert max(len(c) for c in billing.stock_calls) <= 12  # never past the max depth
    # nor held at once: KEY_A's holds placed, less the 40 it used, with KEY_B's 4 aside
    assert len(billing.stocked) - 4 - 40 <= 12 and billing.released == []
    assert len(billing.reserved) == 4  # each key's first two asked billing; KEY_A's 40 were stocked


async def test_a_slow_refill_deepens_the_stock_to_outlast_four_round_trips(clock: Clock) -> None:
    """A key every 1 ms, covering 5 ms: 5 holds while refills are quick. The first refill takes
    11 ms (a loaded billing): the next one stocks 4 x 11 ms of the key's requests, 44 holds."""
    billing = StockBilling(gate=asyncio.Event())
    metrics = GatewayMetrics(CollectorRegistry())
    stock = HoldStock(billing, metrics, depth=4, max_depth=48, cover_s=0.005, clock=clock)
    for _ in range(12):  # the first refill is asked at the second request and answered 11 ms later
        await _request(stock, billing, KEY_A, 100)
        await _settle()
        clock.now += 0.001
    assert [len(c) for c in billing.stock_calls] == [5]
    billing.gate.set()
    await _settle()
    await _request(stock, billing, KEY_A, 100)  # uses a stocked hold, leaving 4: refilled to 44
    await _settle()
    assert [len(c) for c in billing.stock_calls] == [5, 40]
    assert len(billing.reserved) == 12  # the first two, and the ten that came while the stock was empty


def test_the_max_depth_is_never_below_the_depth_and_off_stays_off(clock: Clock) -> None:
    registry = CollectorRegistry()
    assert HoldStock(StockBilling(), GatewayMetrics(registry), depth=8, max_depth=2)._max_depth == 8
    off = HoldStock(StockBilling(), GatewayMetrics(CollectorRegistry()), depth=0, max_depth=48)
    assert off.enabled is False and off._max_depth == 0
