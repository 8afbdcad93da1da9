"""HoldService over real Redis with a fake wallet loader (the PostgreSQL collaborator)."""

from __future__ import annotations

import asyncio

from billing_helpers import new_org

from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.wallets.repository import WalletState


class FakeWallets:
    """Stands in for PostgreSQL: a dict of wallets, counting loads."""

    def __init__(self, **balances: tuple[int, int]) -> None:
        self.balances = balances
        self.loads = 0

    async def load(self, org_id: str) -> WalletState:
        self.loads += 1
        await asyncio.sleep(0.01)  # long enough for concurrent callers to pile up
        balance, version = self.balances.get(org_id, (0, 0))
        return WalletState(org_id, balance, version)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def value(metric: object) -> float:
    return metric._value.get()  # type: ignore[attr-defined, no-any-return]


async def test_a_cold_wallet_is_loaded_once_for_a_burst(store: HoldStore, metrics: BillingMetrics) -> None:
    org = new_org()
    db = FakeWallets(**{org: (10_000, 3)})
    holds = HoldService(store, db.load, metrics)
    results = await asyncio.gather(
        *(
            holds.reserve(
                org,
                f"r{i}",
                1_000,
            )
            for i in range(50)
        )
    )
    assert db.loads == 1
    assert sum(r.granted for r in results) == 10
    assert value(metrics.holds_granted) == 10 and value(metrics.holds_refused) == 40
    balance = await holds.balance(org)
    assert (balance.balance_micros, balance.held_micros, balance.available_micros) == (10_000, 10_000, 0)


async def test_unknown_org_gets_a_zero_wallet_and_is_refused(
    store: HoldStore, metrics: BillingMetrics
) -> None:
    holds = HoldService(store, FakeWallets().load, metrics)
    result = await holds.reserve(new_org(), "r1", 1)
    assert (result.granted, result.hold_id, result.available_micros) == (False, "r1", 0)


async def test_zero_cost_reserve_is_granted_on_an_empty_wallet(
    store: HoldStore, metrics: BillingMetrics
) -> None:
    holds = HoldService(store, FakeWallets().load, metrics)
    assert (await holds.reserve(new_org(), "r1", 0)).granted


async def test_refresh_never_goes_back_in_time(store: HoldStore, metrics: BillingMetrics) -> None:
    org = new_org()
    holds = HoldService(store, FakeWallets(**{org: (100, 1)}).load, metrics)
    await holds.refresh(WalletState(org, 50, 3))
    await holds.refresh(WalletState(org, 80, 2))
    assert (await holds.balance(org)).balance_micros == 50


async def test_sweeper_releases_only_expired_holds_and_counts_them(
    store: HoldStore, metrics: BillingMetrics
) -> None:
    org = new_org()
    clock = Clock(1_000_000.0)
    holds = HoldService(
        store, FakeWallets(**{org: (100, 1)}).load, metrics, hold_ttl_seconds=600, clock=clock
    )
    assert (await holds.reserve(org, "old", 30)).granted
    clock.now += 300
    assert (await holds.reserve(org, "young", 30)).granted
    clock.now += 301  # "old" is 601 s old, "young" 301 s
    assert await holds.sweep_expired() == 1
    assert value(metrics.holds_expired) == 1
    assert (await holds.balance(org)).held_micros == 30
    assert await holds.release(org, "old") is False  # already gone
    assert await holds.release(org, "young") is True
    assert await holds.sweep_expired() == 0
