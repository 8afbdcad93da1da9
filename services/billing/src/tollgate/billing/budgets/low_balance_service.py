"""Low-balance alerts: the per-organisation setting, the alert a setting change fires, and the
alerts a settlement batch fires. Gets its session from the caller and never commits.

Exactly once per crossing: settlement runs after `wallets.service.post` took the wallet's row
lock, and `set_low_balance` takes the same lock first, so the postings and setting changes of an
org form one sequence; each batch sees only its own stretch of the balance history (versions
before+1 .. after, which no other transaction posts) and a setting change sees the balance as the
last posting left it. A crossing is named by the wallet version of the entry that went below
(`low_balance.crossing_period`), which is in the alert's natural key: a redelivered batch posts
nothing (its events are not fresh) and a rolled-back one records nothing, so no crossing fires twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.alerts.schemas import AlertFact
from tollgate.billing.alerts.service import record_alerts
from tollgate.billing.budgets import low_balance_repository as repository
from tollgate.billing.budgets.errors import InvalidParameter
from tollgate.billing.budgets.low_balance import (
    Crossing,
    amounts_by_org,
    crossed_by_setting,
    crossings,
    low_balance_fact,
)
from tollgate.billing.budgets.low_balance_repository import LowBalanceRow
from tollgate.billing.budgets.schemas import LowBalanceSet
from tollgate.billing.budgets.service import MAX_BUDGET_MICROS, validate_emails
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.billing.wallets import repository as wallet_repository
from tollgate.billing.wallets.repository import WalletState
from tollgate.common.money import credits_to_micros

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LowBalanceView:
    org_id: str
    setting: LowBalanceRow | None
    balance_micros: int

    @property
    def below_threshold(self) -> bool:
        return self.setting is not None and self.balance_micros < self.setting.threshold_micros


def validate(body: LowBalanceSet) -> tuple[int | None, tuple[str, ...] | None]:
    """(threshold micros or None to remove, own e-mails or None to inherit the budget's)."""
    threshold = None
    value = body.low_balance_threshold
    if value is not None:
        threshold = credits_to_micros(value) if value.is_finite() else 0
        if not 0 < threshold <= MAX_BUDGET_MICROS:
            raise InvalidParameter(
                "low_balance_threshold must be between 0.000001 and 1000000000 credits"
                " (or null to remove it).",
                param="low_balance_threshold",
                value=str(value),
            )
    emails = None if body.alert_emails is None else validate_emails(body.alert_emails)
    return threshold, emails


async def set_low_balance(session: AsyncSession, org_id: str, body: LowBalanceSet) -> tuple[bool, list[str]]:
    """Creates, replaces or (threshold None) removes the org's setting. Returns (whether a setting
    existed before, ids of alerts fired): a threshold the balance was not below before and is now
    alerts at once, as the crossing the change made (see `low_balance.crossed_by_setting`)."""
    threshold, emails = validate(body)
    wallet = await repository.lock_wallet(session, org_id)
    old = (await repository.settings_of(session, [org_id])).get(org_id)
    if threshold is None:
        return await repository.delete(session, org_id), []
    await repository.upsert(session, org_id, threshold, emails)
    if not crossed_by_setting(
        wallet.balance_micros, None if old is None else old.threshold_micros, threshold
    ):
        return old is not None, []
    setting = (await repository.settings_of(session, [org_id]))[org_id]
    crossing = Crossing(wallet.version, wallet.balance_micros)
    fired = await _record(session, [low_balance_fact(org_id, crossing, threshold, setting.effective_emails)])
    return old is not None, fired


async def view(session: AsyncSession, org_id: str) -> LowBalanceView:
    setting = (await repository.settings_of(session, [org_id])).get(org_id)
    wallet = (await wallet_repository.get_many(session, [org_id])).get(org_id)
    return LowBalanceView(org_id, setting, wallet.balance_micros if wallet else 0)


async def alert_settled_crossings(
    session: AsyncSession, fresh: Sequence[UsageCharge], wallets: Mapping[str, WalletState]
) -> list[str]:
    """Alerts for the thresholds this settlement batch's usage postings crossed. `fresh`: the
    batch's first-time charges in posting order; `wallets`: each org's wallet after the postings."""
    return await alert_posted_crossings(
        session, amounts_by_org((c.org_id, c.cost_micros) for c in fresh), wallets
    )


async def alert_posted_crossings(
    session: AsyncSession, amounts: Mapping[str, Sequence[int]], wallets: Mapping[str, WalletState]
) -> list[str]:
    """Alerts for the thresholds crossed by ledger postings just made in this transaction (under
    the wallets' row locks): `amounts`, the signed amounts per org in posting order; `wallets`, each
    org's wallet after them. Any debit path (a refund, a negative adjustment) can call this too."""
    if not amounts:
        return []
    settings = await repository.settings_of(session, sorted(amounts))
    facts: list[AlertFact] = []
    for org_id, setting in settings.items():
        after = wallets.get(org_id)
        if after is None:
            continue
        posted = amounts[org_id]
        before_balance = after.balance_micros - sum(posted)
        before_version = after.version - len(posted)
        for crossing in crossings(before_balance, before_version, posted, setting.threshold_micros):
            facts.append(
                low_balance_fact(org_id, crossing, setting.threshold_micros, setting.effective_emails)
            )
    return await _record(session, facts) if facts else []


async def _record(session: AsyncSession, facts: Sequence[AlertFact]) -> list[str]:
    fired = await record_alerts(session, facts)
    span = trace.get_current_span()
    for fact in facts:
        if fact.alert_id in fired:
            span.add_event("low_balance_alert", {"alert_id": fact.alert_id, "org_id": fact.org_id})
            log.info(
                "low balance alert fired",
                extra={
                    "alert_id": fact.alert_id,
                    "org_id": fact.org_id,
                    "threshold_micros": fact.limit_micros,
                    "balance_micros": fact.balance_micros,
                },
            )
    return fired
