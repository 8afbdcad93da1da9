"""Pure rules of low-balance alerts: when a wallet's balance crossed an organisation's threshold,
and the alert fact that crossing becomes. No I/O here.

A crossing is a ledger entry that took the balance from >= threshold to < threshold. Each ledger
entry has its own wallet version (the wallet's version goes up by one per entry, under the wallet's
row lock), so the version of the entry that crossed names the crossing, and the alert's natural key
carries it: one alert per crossing, and a new crossing (after a credit lifted the balance back to
>= threshold) has a new version, hence a new alert. Nothing needs re-arming explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tollgate.billing.alerts.schemas import AlertFact

LOW_BALANCE = "low_balance"
# A low-balance alert has no period and no percentage: `period` names the crossing (the wallet
# version of the ledger entry that went below) and threshold_pct is fixed at 100 (the balance fell
# below 100% of the threshold).
THRESHOLD_PCT = 100


@dataclass(frozen=True, slots=True)
class Crossing:
    version: int  # wallet version of the ledger entry whose balance_after went below the threshold
    balance_micros: int  # the balance right after that entry


def crossings(
    before_balance: int, before_version: int, amounts: Iterable[int], threshold: int
) -> list[Crossing]:
    """Ledger entries (signed `amounts`, applied in order from the wallet's state before them) that
    took the balance from >= threshold to < threshold. Entry i gets version before_version + i + 1,
    as `wallets.service.ledger_entries_for` numbers them."""
    found: list[Crossing] = []
    balance, version = before_balance, before_version
    for amount in amounts:
        previous = balance
        balance += amount
        version += 1
        if previous >= threshold > balance:
            found.append(Crossing(version, balance))
    return found


def crossed_by_setting(balance: int, old_threshold: int | None, new_threshold: int | None) -> bool:
    """A threshold change is a crossing too when it turns a balance that was not low (no threshold,
    or >= the old one) into a low one: setting a threshold above the balance alerts at once, while
    re-saving or raising a threshold the balance was already below does not alert again."""
    if new_threshold is None or balance >= new_threshold:
        return False
    return old_threshold is None or balance >= old_threshold


def crossing_period(version: int) -> str:
    """The `period` slot of a low-balance alert (and so of its natural key): "wallet-v42"."""
    return f"wallet-v{version}"


def low_balance_fact(org_id: str, crossing: Crossing, threshold: int, emails: Sequence[str]) -> AlertFact:
    """alert_id = "low_balance:<org_id>:wallet-v<version>:100", unique per crossing."""
    return AlertFact(
        org_id=org_id,
        key_id=None,
        kind=LOW_BALANCE,
        budget_id="",
        period=crossing_period(crossing.version),
        threshold_pct=THRESHOLD_PCT,
        spent_micros=0,
        limit_micros=threshold,
        balance_micros=crossing.balance_micros,
        emails=tuple(emails),
    )


def amounts_by_org(charges: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """(org_id, cost) of a batch's charged usage, in posting order -> the signed ledger amounts per
    org (usage debits), the way `wallets.service.group_by_org` groups the postings."""
    out: dict[str, list[int]] = {}
    for org_id, cost in charges:
        if cost > 0:
            out.setdefault(org_id, []).append(-cost)
    return out
