"""Hold stock: a busy key's next chat request uses a hold billing has already placed.

Why: at concurrency 1 the `Reserve` round trip (gateway -> billing -> Redis and back) is the largest
single part of the gateway's overhead (docs/benchmarks.md). For a key that is sending requests back
to back, the gateway asks billing for the *next* request's hold while the current one is served.

What stays true (docs/billing.md, "Hold stock"):
- every request is covered, before its upstream call, by a billing hold of at least its max_cost;
  a stocked hold is settled (its id travels in UsageRecorded.hold_id) or released like any other;
- billing alone decides whether a hold may be stocked (`ReserveResponse.stockable`): only when it is
  whole and the org stays far from its wallet, budgets and quota. Near any limit, every request
  asks billing itself, so refusals and capped holds there are exactly as without the stock.
What changes: a stocked hold was checked when it was placed, not when it is used. A change that
lowers an org's headroom without a request (a refund, a negative adjustment, a new or lower budget or
quota) reaches stocked holds when they age out: within `max_age_s`, like a key revocation. In that
window a key can spend at most `max_depth` stocked holds per gateway process.
Holds are placed in batches (`ReserveStock`, half the depth or more per call), so a busy key costs
billing one gRPC call per few requests instead of one per request.
How deep: `depth` holds, or more for a key fast enough to drain half of them before a refill comes
back (up to `max_depth`): the stock then covers the key's next `cover_s` of requests at its recent
rate, or four of its recent refill round trips when those are longer. At concurrency 16 a depth of
16 ran dry between refills and a quarter of the requests made a Reserve round trip of their own
(docs/benchmarks.md); a fixed larger depth would instead leave a moderately busy key's unused holds
to expire and be released one by one. On a loaded machine a `ReserveStock` outlasted the key's next
50 ms of requests and a fifth of them found the stock empty, hence the round trips.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from tollgate.common.auth_client import Principal
from tollgate.gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

_StockKey = tuple[str, int]  # (org_id, key_id)
# The half of a stock left when a refill is asked must outlast the refill's round trip: the stock
# covers this many of its recent round trips (a mean; the slow ones are several times longer).
_REFILL_MARGIN = 4.0


class StockBilling(Protocol):
    async def reserve_stock(
        self, principal: Principal, hold_ids: list[str], max_cost_micros: int, model: str
    ) -> tuple[list[str], str]: ...
    async def release(self, org_id: str, hold_id: str) -> bool: ...


@dataclass(slots=True)
class _Stocked:
    hold_id: str
    amount_micros: int
    placed_at: float


@dataclass(slots=True)
class _KeyState:
    last_request_at: float
    busy: bool = False  # its latest request came within the hot window of the one before
    stockable: bool = False  # billing's word on this key's last hold
    placing: int = 0  # stock holds asked of billing, not answered yet
    gap_s: float = 0.0  # moving average of the time between its busy requests (0: none yet)


class HoldStock:
    def __init__(
        self,
        billing: StockBilling,
        metrics: GatewayMetrics,
        *,
        depth: int = 16,
        max_depth: int | None = None,
        cover_s: float = 0.05,
        max_age_s: float = 1.0,
        hot_window_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`depth` holds per busy key (0 turns the stock off), up to `max_depth` (default: `depth`)
        for a key whose recent rate needs more to cover `cover_s` of its requests; a key is busy
        when its previous request came less than `hot_window_s` before; stocked holds older than
        `max_age_s` are released, never used."""
        self._billing = billing
        self._metrics = metrics
        self._depth = depth
        self._max_depth = max(depth, max_depth or 0) if depth > 0 else 0
        self._cover_s = cover_s
        self._max_age = max_age_s
        self._hot_window = hot_window_s
        self._clock = clock
        # moving average of a ReserveStock round trip: on a loaded machine it outgrows cover_s
        self._refill_s = 0.0
        self._stock: dict[_StockKey, deque[_Stocked]] = {}
        self._keys: dict[_StockKey, _KeyState] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # resolved once: these two are counted on every busy key's request
        self._hits = metrics.hold_stock.labels("hit")
        self._misses = metrics.hold_stock.labels("miss")

    @property
    def enabled(self) -> bool:
        return self._depth > 0

    def take(self, principal: Principal, max_cost_micros: int, model: str) -> str | None:
        """A stocked hold id covering `max_cost_micros`, or None (then the caller reserves itself
        and reports billing's answer through `learn`)."""
        key = (principal.org_id, principal.key_id)
        now = self._clock()
        state = self._keys.get(key)
        if state is None:
            self._keys[key] = _KeyState(now)
            return None
        gap = now - state.last_request_at
        state.busy = busy = gap <= self._hot_window
        state.last_request_at = now
        if busy:
            state.gap_s = gap if state.gap_s == 0.0 else state.gap_s + 0.1 * (gap - state.gap_s)
        taken = self._pop_usable(key, max_cost_micros, now)
        if taken is None:
            if busy and state.stockable:
                self._misses.inc()
            return None
        self._hits.inc()
        if busy and state.stockable:
            self._refill(key, state, principal, max(max_cost_micros, taken.amount_micros), model)
        return taken.hold_id

    def learn(self, principal: Principal, max_cost_micros: int, model: str, stockable: bool) -> None:
        """Billing's answer to a request's own Reserve: stock the next hold if the key is busy."""
        state = self._keys.get((principal.org_id, principal.key_id))
        if state is None:
            return
        state.stockable = stockable
        if stockable and state.busy:
            self._refill((principal.org_id, principal.key_id), state, principal, max_cost_micros, model)

    def _pop_usable(self, key: _StockKey, max_cost_micros: int, now: float) -> _Stocked | None:
        stock = self._stock.get(key)
        while stock:
            item = stock.popleft()
            if now - item.placed_at <= self._max_age and item.amount_micros >= max_cost_micros:
                return item
            self._release(key[0], item, "expired" if now - item.placed_at > self._max_age else "too_small")
        return None

    def _refill(
        self, key: _StockKey, state: _KeyState, principal: Principal, amount: int, model: str
    ) -> None:
        # Refilled in batches (one ReserveStock for half the depth or more): the gRPC call, not
        # the hold, is most of billing's CPU per hold.
        have = state.placing + len(self._stock.get(key, ()))
        target = self._target_depth(state)
        if have > target // 2:
            return
        count = target - have
        state.placing += count
        self._spawn(self._place(key, state, principal, amount, model, count))

    def _target_depth(self, state: _KeyState) -> int:
        """`depth`, or the holds this key uses in `cover_s` (or in four refill round trips, when
        longer) at its recent rate, up to `max_depth`."""
        if self._max_depth == self._depth or state.gap_s <= 0.0:
            return self._depth
        # the half left when a refill is asked must outlast the refill's round trip
        cover = max(self._cover_s, _REFILL_MARGIN * self._refill_s)
        needed = math.ceil(cover / max(state.gap_s, 1e-5) - 1e-6)  # 10.000000001 is 10
        return min(self._max_depth, max(self._depth, needed))

    async def _place(
        self, key: _StockKey, state: _KeyState, principal: Principal, amount: int, model: str, count: int
    ) -> None:
        hold_ids = [f"hs_{uuid.uuid4().hex}" for _ in range(count)]
        asked_at = self._clock()
        try:
            placed, stopped = await self._billing.reserve_stock(principal, hold_ids, amount, model)
        except grpc.RpcError:
            self._metrics.hold_stock.labels("error").inc()
            log.warning("placing stock holds failed", exc_info=True)
            for hold_id in hold_ids:  # billing may have placed some before the call failed
                self._spawn(self._release_now(principal.org_id, hold_id))
            return
        finally:
            state.placing -= count
        now = self._clock()
        took = now - asked_at
        self._refill_s = took if self._refill_s == 0.0 else self._refill_s + 0.2 * (took - self._refill_s)
        if placed:
            stock = self._stock.setdefault(key, deque())
            stock.extend(_Stocked(hold_id, amount, now) for hold_id in placed)
            self._metrics.hold_stock.labels("placed").inc(len(placed))
        if stopped:
            # near a limit (or refused): back to asking billing per request until it says otherwise
            state.stockable = False
            self._metrics.hold_stock.labels("unstockable" if stopped == "not_stockable" else "refused").inc()

    def _release(self, org_id: str, item: _Stocked, outcome: str) -> None:
        self._metrics.hold_stock.labels(outcome).inc()
        self._spawn(self._release_now(org_id, item.hold_id))

    async def _release_now(self, org_id: str, hold_id: str) -> None:
        await self._billing.release(org_id, hold_id)  # best effort: billing expires what it misses

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def sweep(self) -> int:
        """Releases stocked holds past their age and forgets idle keys; returns holds released."""
        now = self._clock()
        released = 0
        for key, stock in list(self._stock.items()):
            while stock and now - stock[0].placed_at > self._max_age:
                self._release(key[0], stock.popleft(), "expired")
                released += 1
            if not stock:
                del self._stock[key]
        idle = [k for k, s in self._keys.items() if now - s.last_request_at > 60 and k not in self._stock]
        for key in idle:
            del self._keys[key]
        return released

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(max(self._max_age / 2, 0.05))
            self.sweep()

    async def close(self) -> None:
        """Gives every stocked hold back and waits for the calls in flight."""
        for key, stock in self._stock.items():
            while stock:
                self._release(key[0], stock.popleft(), "closed")
        self._stock.clear()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
