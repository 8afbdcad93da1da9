"""Credit holds on the hot path: reserve, release, balance, and the sweeper for expired holds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tollgate.billing.holds.store import CachedWallet, HoldStore, ReserveStatus
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.wallets.repository import WalletState

log = logging.getLogger(__name__)

WalletLoader = Callable[[str], Awaitable[WalletState]]


@dataclass(frozen=True, slots=True)
class ReserveResult:
    granted: bool
    hold_id: str
    available_micros: int


class HoldService:
    def __init__(
        self,
        store: HoldStore,
        load_wallet: WalletLoader,
        metrics: BillingMetrics,
        *,
        hold_ttl_seconds: int = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._load_wallet = load_wallet
        self._metrics = metrics
        self._ttl = hold_ttl_seconds
        self._clock = clock
        # One PostgreSQL load per org at a time: a burst of Reserves on a cold wallet shares it.
        self._loading: dict[str, asyncio.Task[None]] = {}

    async def reserve(self, org_id: str, hold_id: str, max_cost_micros: int) -> ReserveResult:
        """Idempotent on hold_id (the request id). One EVALSHA when the wallet is cached."""
        expires_at = self._clock() + self._ttl
        status, available = await self._store.reserve(org_id, hold_id, max_cost_micros, expires_at)
        if status is ReserveStatus.NOT_CACHED:
            await self._ensure_cached(org_id)
            status, available = await self._store.reserve(org_id, hold_id, max_cost_micros, expires_at)
            if status is ReserveStatus.NOT_CACHED:  # evicted in between: refuse rather than loop
                raise RuntimeError(f"wallet of {org_id} could not be cached")
        granted = status is ReserveStatus.GRANTED
        (self._metrics.holds_granted if granted else self._metrics.holds_refused).inc()
        return ReserveResult(granted, hold_id, available)

    async def release(self, org_id: str, hold_id: str) -> bool:
        released = await self._store.release(org_id, hold_id)
        if released:
            self._metrics.holds_released.inc()
        return released

    async def balance(self, org_id: str) -> CachedWallet:
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

    async def sweep_expired(self, limit: int = 500) -> int:
        """Releases holds past their TTL; returns how many were still open."""
        released = 0
        for org_id, hold_id in await self._store.expired(self._clock(), limit):
            if await self._store.release(org_id, hold_id):
                released += 1
                log.info("expired hold released", extra={"org_id": org_id, "hold_id": hold_id})
        if released:
            self._metrics.holds_expired.inc(released)
            log.warning("released expired holds", extra={"count": released})
        return released

    async def run_sweeper(self, interval_seconds: float) -> None:
        while True:
            try:
                while await self.sweep_expired() > 0:
                    pass  # a full page: more may be waiting
            except Exception:  # Redis blips must not kill the sweeper; the next round retries
                log.exception("hold sweep failed")
            await asyncio.sleep(interval_seconds)
