"""Budgets' part of settling a batch, in the settlement's own transaction: spend counters, the
daily cost rollup, and the alerts for thresholds the batch crossed (budgets, quotas, low balance)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.alerts.service import record_alerts
from tollgate.billing.budgets import repository
from tollgate.billing.budgets.alerting import alert_facts
from tollgate.billing.budgets.low_balance_service import alert_settled_crossings
from tollgate.billing.budgets.rules import daily_rollups, spend_increments
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.billing.wallets.repository import WalletState


@dataclass(slots=True)
class SpendOutcome:
    # org_id -> (key_id, period) -> new total, for the Redis limits cache after commit
    spent: dict[str, dict[tuple[int, str], int]] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)


async def account_usage(
    session: AsyncSession,
    fresh: Sequence[UsageCharge],
    balances: dict[str, int],
    now: datetime,
    *,
    repeated: Sequence[UsageCharge] = (),
    wallets: Mapping[str, WalletState] | None = None,
) -> SpendOutcome:
    """`fresh`: charges settled for the first time (each counted exactly once, here). `repeated`:
    redelivered ones, counted already; their counters' totals are read again so a crash between
    an earlier commit and its Redis update is repaired by the redelivery. `wallets`: each org's
    wallet right after this batch's postings (row-locked), for low-balance alerts."""
    outcome = SpendOutcome()
    if wallets:
        outcome.alerts = await alert_settled_crossings(session, fresh, wallets)
    increments = spend_increments(fresh, now)
    totals = await repository.add_spend(session, increments)
    if fresh:
        await repository.add_daily(session, daily_rollups(fresh, now))
    again = [k for k in spend_increments(repeated, now) if k not in totals]
    for (org_id, key_id, period), total in {
        **await repository.counter_totals(session, again),
        **totals,
    }.items():
        outcome.spent.setdefault(org_id, {})[(key_id, period)] = total
    if not increments:
        return outcome
    orgs = sorted({org for org, _, _ in increments})
    keys = sorted({key for _, key, _ in increments if key})
    budgets = await repository.budgets_of(session, orgs)
    quotas = await repository.quotas_of(session, keys)
    if not budgets and not quotas:
        return outcome
    facts = alert_facts(increments, totals, budgets, quotas, balances)
    if facts:
        outcome.alerts += await record_alerts(session, facts)
    return outcome
