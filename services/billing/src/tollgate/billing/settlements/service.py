"""Settles a batch of usage events in the caller's transaction, exactly once per event id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.budgets.settlement import account_usage
from tollgate.billing.holds.store import OrgSettlement
from tollgate.billing.settlements import repository
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.billing.wallets import repository as wallet_repository
from tollgate.billing.wallets import service as wallets
from tollgate.billing.wallets.repository import WalletState


@dataclass(slots=True)
class BatchOutcome:
    settled: int = 0
    duplicates: int = 0
    charged_micros: int = 0
    alerts: list[str] = field(default_factory=list)  # ids of alerts this batch fired
    # What Redis must learn once the transaction has committed, one entry per org in the batch.
    cache_updates: list[OrgSettlement] = field(default_factory=list)


def dedupe(charges: Sequence[UsageCharge]) -> tuple[list[UsageCharge], int]:
    """First occurrence of each event id, in order, and how many repeats were dropped."""
    seen: set[str] = set()
    unique: list[UsageCharge] = []
    for c in charges:
        if c.event_id not in seen:
            seen.add(c.event_id)
            unique.append(c)
    return unique, len(charges) - len(unique)


async def settle_batch(
    session: AsyncSession, charges: Sequence[UsageCharge], *, now: datetime | None = None
) -> BatchOutcome:
    """`now` dates events that carry no timestamp of their own (budgets use the event's time) and
    bounds how far ahead an event's own time is believed (settlements.repository.AHEAD)."""
    unique, repeats = dedupe(charges)
    now = now or datetime.now(UTC)
    new_ids = await repository.insert_new(session, unique, now)
    fresh = [c for c in unique if c.event_id in new_ids]
    outcome = BatchOutcome(settled=len(fresh), duplicates=repeats + len(unique) - len(fresh))

    postings = [
        wallets.Posting(c.org_id, -c.cost_micros, "usage", c.event_id, c.key_id)
        for c in fresh
        if c.cost_micros > 0
    ]
    outcome.charged_micros = sum(-p.amount_micros for p in postings)
    states: dict[str, WalletState] = await wallets.post(session, postings)
    # Orgs seen only through duplicates or free requests still get their cache refreshed: a
    # redelivery after a crash between commit and refresh must repair Redis.
    others = sorted({c.org_id for c in unique} - states.keys())
    states.update(await wallet_repository.get_many(session, others))
    spend = await account_usage(
        session,
        fresh,
        {org: st.balance_micros for org, st in states.items()},
        now,
        repeated=[c for c in unique if c.event_id not in new_ids],
        wallets=states,
    )
    outcome.alerts = spend.alerts

    holds_by_org: dict[str, list[str]] = {}
    for c in unique:
        holds = holds_by_org.setdefault(c.org_id, [])
        if c.hold_id:
            holds.append(c.hold_id)
    for org_id, hold_ids in holds_by_org.items():
        state = states.get(org_id)
        outcome.cache_updates.append(
            OrgSettlement(
                org_id=org_id,
                hold_ids=hold_ids,
                balance_micros=None if state is None else state.balance_micros,
                version=0 if state is None else state.version,
                spent=spend.spent.get(org_id, {}),
            )
        )
    return outcome
