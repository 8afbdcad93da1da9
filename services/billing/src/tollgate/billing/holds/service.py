"""Credit holds on the hot path: reserve, release, balance, and the sweeper for expired holds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tollgate.billing.budgets.repository import LimitsSnapshot
from tollgate.billing.budgets.rules import day_key, month_key
from tollgate.billing.holds.pending_marks import PendingMarks
from tollgate.billing.holds.store import (
    CachedWallet,
    HoldStore,
    LimitCheck,
    MarkRecord,
    ReserveStatus,
    StockStatus,
    SweptHold,
)
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.wallets.repository import WalletState

log = logging.getLogger(__name__)

WalletLoader = Callable[[str], Awaitable[WalletState]]
# (org_id, month, day) -> the org's budgets, current spend and key quotas from PostgreSQL
LimitsLoader = Callable[[str, str, str], Awaitable[LimitsSnapshot]]
# (org_id, key_id, month_quota_micros): remembers a key's quota for settlement's quota alerts
QuotaRecorder = Callable[[str, int, int], Awaitable[None]]
# Publishes the usage events kept in marks of expired holds (their payloads) to usage.v1, raising
# when Kafka did not acknowledge them all; the sweeper retries those holds later.
MarkPublisher = Callable[[Sequence[str]], Awaitable[None]]

_ATTEMPTS = 3  # a cold org needs at most two loads (wallet, limits) before its Reserve answers


@dataclass(frozen=True, slots=True)
class ReserveResult:
    granted: bool
    hold_id: str
    available_micros: int
    hold_micros: int = 0
    reason: str = ""
    balance_micros: int = 0
    # The caller may keep this hold in stock for a later request of the same key (docs/billing.md,
    # "Hold stock"): it is whole and the org is far from every limit.
    stockable: bool = False


class HoldService:
    def __init__(
        self,
        store: HoldStore,
        load_wallet: WalletLoader,
        metrics: BillingMetrics,
        *,
        load_limits: LimitsLoader | None = None,
        record_quota: QuotaRecorder | None = None,
        hold_ttl_seconds: int = 600,
        stock_headroom: int = 100,
        mark_grace_seconds: float = 30.0,
        publish_marks: MarkPublisher | None = None,
        mark_flush_interval_s: float = 0.02,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Without `load_limits` only the wallet is checked (budgets and quotas are off).
        A granted hold is stockable when at least `stock_headroom` more such holds would still fit
        under the wallet and every limit (0: never). A marked hold not settled within
        `mark_grace_seconds` has its mark's usage event published by the sweeper (`publish_marks`;
        without one, marked holds simply wait for their event)."""
        self._store = store
        self._load_wallet = load_wallet
        self._load_limits = load_limits
        self._record_quota = record_quota
        self._metrics = metrics
        self._ttl = hold_ttl_seconds
        self._mark_grace = mark_grace_seconds
        self._publish_marks = publish_marks
        # marks received, written to Redis in batches; a Reserve that would be refused and every
        # balance read first write their org's (holds/pending_marks.py)
        self.marks = PendingMarks(
            store, metrics, grace_s=mark_grace_seconds, flush_interval_s=mark_flush_interval_s, clock=clock
        )
        self._stock_headroom = stock_headroom
        self._clock = clock
        # One PostgreSQL load per org at a time: a burst of Reserves on a cold wallet shares it.
        self._loading: dict[str, asyncio.Task[None]] = {}
        self._loading_limits: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def reserve(
        self,
        org_id: str,
        hold_id: str,
        max_cost_micros: int,
        *,
        key_id: int = 0,
        month_quota_micros: int = 0,
        ttl_seconds: int = 0,
    ) -> ReserveResult:
        """Idempotent on hold_id (the request id). One EVALSHA when the wallet and limits are cached.
        `ttl_seconds` (> 0) keeps this hold longer than the default TTL (a training job's hold).
        The wallet must cover max_cost in full; budgets and the key's month quota cap the hold at
        what they still allow and refuse only when nothing is left (see holds/scripts.py)."""
        now = self._clock()
        expires_at = now + (ttl_seconds if ttl_seconds > 0 else self._ttl)
        check = self._limit_check(now, key_id, month_quota_micros)
        reply = None
        for _ in range(_ATTEMPTS):
            reply = await self._store.reserve(org_id, hold_id, max_cost_micros, expires_at, limits=check)
            if reply.status is ReserveStatus.NOT_CACHED:
                await self._ensure_cached(org_id)
            elif reply.status is ReserveStatus.LIMITS_NOT_CACHED and check is not None:
                await self._ensure_limits(org_id, check.month, check.day)
            else:
                break
        if reply is None or reply.status not in (ReserveStatus.GRANTED, ReserveStatus.REFUSED):
            # evicted in between every time: refuse rather than loop
            raise RuntimeError(f"wallet or limits of {org_id} could not be cached")
        if reply.status is ReserveStatus.REFUSED and self.marks.waiting(org_id):
            # the org's answered requests cost less than their holds say: write that, then ask again
            await self.marks.write_org(org_id)
            self._metrics.reserve_retried_after_marks.inc()
            reply = await self._store.reserve(org_id, hold_id, max_cost_micros, expires_at, limits=check)
            if reply.status not in (ReserveStatus.GRANTED, ReserveStatus.REFUSED):
                raise RuntimeError(f"wallet or limits of {org_id} could not be cached")
        granted = reply.status is ReserveStatus.GRANTED
        if granted:
            self._metrics.holds_granted.inc()
            if reply.hold_micros < max_cost_micros and check is not None:
                self._metrics.holds_capped.inc()
        else:
            self._metrics.holds_refused.inc()
            self._metrics.reserve_refusals.labels(reply.reason).inc()
        if reply.quota_changed and self._record_quota is not None and key_id:
            self._in_background(self._record_quota(org_id, key_id, month_quota_micros))
        stockable = granted and self._stockable(reply.hold_micros, reply.headroom_micros, max_cost_micros)
        return ReserveResult(
            granted,
            hold_id,
            reply.available_micros,
            reply.hold_micros if granted else 0,
            reply.reason,
            reply.balance_micros,
            stockable,
        )

    async def reserve_stock(
        self,
        org_id: str,
        hold_ids: Sequence[str],
        max_cost_micros: int,
        *,
        key_id: int = 0,
        month_quota_micros: int = 0,
    ) -> tuple[list[str], str]:
        """Holds for a busy key's coming requests, in one Lua script: Reserve's checks one hold at
        a time, stopping at the first refused or not-stockable one (not kept). Returns (placed ids,
        why it stopped: "" when all were placed)."""
        if self._stock_headroom <= 0 or max_cost_micros <= 0 or not hold_ids:
            return [], "not_stockable"
        now = self._clock()
        check = self._limit_check(now, key_id, month_quota_micros)
        remaining = list(hold_ids)
        placed: list[str] = []
        stopped = "not_stockable"
        for _ in range(_ATTEMPTS):
            reply = await self._store.reserve_stock(
                org_id, remaining, max_cost_micros, now + self._ttl, self._stock_headroom, limits=check
            )
            placed.extend(remaining[: reply.placed])
            remaining = remaining[reply.placed :]
            self._metrics.holds_granted.inc(reply.placed)
            if reply.quota_changed and self._record_quota is not None and key_id:
                self._in_background(self._record_quota(org_id, key_id, month_quota_micros))
            if reply.code == StockStatus.NOT_CACHED:
                await self._ensure_cached(org_id)
            elif reply.code == StockStatus.LIMITS_NOT_CACHED and check is not None:
                await self._ensure_limits(org_id, check.month, check.day)
            else:
                if reply.code == StockStatus.REFUSED:
                    self._metrics.holds_refused.inc()
                    stopped = reply.reason or "insufficient_credits"
                elif reply.code == StockStatus.ALL_PLACED:
                    stopped = ""
                break
        return placed, stopped

    def _stockable(self, hold_micros: int, headroom_micros: int, max_cost_micros: int) -> bool:
        return (
            self._stock_headroom > 0
            and max_cost_micros > 0
            and hold_micros == max_cost_micros
            and headroom_micros >= self._stock_headroom * max_cost_micros
        )

    def _limit_check(self, now: float, key_id: int, month_quota_micros: int) -> LimitCheck | None:
        if self._load_limits is None:
            return None
        moment = datetime.fromtimestamp(now, tz=UTC)
        return LimitCheck(key_id, month_key(moment), day_key(moment), month_quota_micros)

    def _in_background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:  # best effort: only quota alerts depend on it, and the next change retries
                log.exception("recording a key quota failed")

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Waits for the background writes started so far (quota records); for shutdown and tests."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    async def refresh_limits(self, org_id: str) -> None:
        """After a budget change committed: new budget config into a cached org (ignored if older)."""
        if self._load_limits is None:
            return
        moment = datetime.fromtimestamp(self._clock(), tz=UTC)
        snap = await self._load_limits(org_id, month_key(moment), day_key(moment))
        await self._store.sync_limits(org_id, snap, init=False)

    async def _ensure_limits(self, org_id: str, month: str, day: str) -> None:
        task = self._loading_limits.get(org_id)
        if task is None:
            task = asyncio.create_task(self._load_limits_into_cache(org_id, month, day))
            self._loading_limits[org_id] = task
            task.add_done_callback(lambda _t: self._loading_limits.pop(org_id, None))
        await asyncio.shield(task)

    async def _load_limits_into_cache(self, org_id: str, month: str, day: str) -> None:
        assert self._load_limits is not None
        snap = await self._load_limits(org_id, month, day)
        await self._store.sync_limits(org_id, snap, init=True)
        self._metrics.limits_loads.inc()

    async def release(self, org_id: str, hold_id: str) -> bool:
        released = await self._store.release(org_id, hold_id)
        if released:
            self._metrics.holds_released.inc()
        return released

    async def balance(self, org_id: str) -> CachedWallet:
        if self.marks.waiting(org_id):
            await self.marks.write_org(org_id)
        wallet = await self._store.read_wallet(org_id)
        if wallet is None:
            await self._ensure_cached(org_id)
            wallet = await self._store.read_wallet(org_id)
            if wallet is None:
                raise RuntimeError(f"wallet of {org_id} could not be cached")
        return wallet

    async def refresh(self, state: WalletState) -> None:
        """Moves the cached balance forward to a committed wallet state (ignored if older)."""
        await self._store.sync_wallet(state.org_id, state.balance_micros, state.version)

    async def _ensure_cached(self, org_id: str) -> None:
        task = self._loading.get(org_id)
        if task is None:
            task = asyncio.create_task(self._load(org_id))
            self._loading[org_id] = task
            task.add_done_callback(lambda _t: self._loading.pop(org_id, None))
        # shield: one caller's cancellation must not cancel the load the others wait on
        await asyncio.shield(task)

    async def _load(self, org_id: str) -> None:
        state = await self._load_wallet(org_id)
        await self._store.sync_wallet(org_id, state.balance_micros, state.version)
        self._metrics.wallet_loads.inc()

    def mark(self, marks: Sequence[MarkRecord]) -> None:
        """The gateway's marks of answered requests: each open hold falls to its request's actual
        cost, and keeps the mark until its usage event settles it (docs/billing.md, "Holds at
        answer time"). Written to Redis within the flush interval, or before any read that needs
        them (a Reserve about to be refused, a balance)."""
        self.marks.add(marks)

    async def sweep_expired(self, limit: int = 500) -> int:
        """Past their TTL, unmarked holds are released; marked ones (answered requests whose usage
        event has not settled them within the mark grace) get their event published again, and stay
        until it settles them. Returns how many expired holds were found still open."""
        now = self._clock()
        swept = [
            await self._store.sweep_one(org_id, hold_id, now + self._mark_grace)
            for org_id, hold_id in await self._store.expired(now, limit)
        ]
        released = [s for s in swept if s.released]
        for s in released:
            log.info("expired hold released", extra={"org_id": s.org_id, "hold_id": s.hold_id})
        if released:
            self._metrics.holds_expired.inc(len(released))
            log.warning("released expired holds", extra={"count": len(released)})
        marked = [s for s in swept if s.mark]
        if marked:
            await self._republish(marked)
        return len(released) + len(marked)

    async def _republish(self, marked: Sequence[SweptHold]) -> None:
        """The usage events of answered requests that never settled: published from their marks,
        with the same event id, so billing's worker and analytics count each exactly once."""
        if self._publish_marks is None:
            return
        try:
            await self._publish_marks([s.mark for s in marked])
        except Exception:
            # kept and rescheduled by SWEEP_ONE: the next sweep after the grace tries again
            log.warning("publishing marked holds failed; retrying later", extra={"count": len(marked)})
            return
        self._metrics.marks_republished.inc(len(marked))
        log.warning(
            "usage of answered requests recovered from their hold marks",
            extra={"count": len(marked), "hold_ids": [s.hold_id for s in marked[:20]]},
        )

    async def run_sweeper(self, interval_seconds: float) -> None:
        while True:
            try:
                while await self.sweep_expired() > 0:
                    pass  # a full page: more may be waiting
            except Exception:  # Redis blips must not kill the sweeper; the next round retries
                log.exception("hold sweep failed")
            await asyncio.sleep(interval_seconds)
