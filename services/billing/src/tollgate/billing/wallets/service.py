"""Money rules for wallet changes: every change is a ledger entry, and the wallet moves with it.

A wallet's version goes up by one per ledger entry, so entry i of a batch records exactly the
(balance, version) the wallet had right after it; the cache uses the version to order refreshes.
Usage may take a balance below zero: the gateway holds `max_cost` before calling upstream, but
what was actually generated is billed in full (never dropped), so a request whose real cost
exceeds its hold overdraws by at most that difference. No other path debits a wallet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.wallets import repository
from tollgate.billing.wallets.repository import NewLedgerEntry, WalletState


@dataclass(frozen=True, slots=True)
class Posting:
    org_id: str
    amount_micros: int  # signed: credits in are positive, usage is negative
    kind: str
    ref: str
    key_id: int | None


def ledger_entries_for(after: WalletState, postings: Sequence[Posting]) -> list[NewLedgerEntry]:
    """Ledger rows for one org's postings (applied in order) given the wallet after all of them."""
    entries: list[NewLedgerEntry] = []
    balance = after.balance_micros
    version = after.version
    # Walk backwards from the final state: each entry's balance_after is the final balance minus
    # everything posted after it.
    for p in reversed(postings):
        entries.append(NewLedgerEntry(p.org_id, p.amount_micros, p.kind, p.ref, p.key_id, balance, version))
        balance -= p.amount_micros
        version -= 1
    entries.reverse()
    return entries


def group_by_org(postings: Sequence[Posting]) -> dict[str, list[Posting]]:
    grouped: dict[str, list[Posting]] = {}
    for p in postings:
        grouped.setdefault(p.org_id, []).append(p)
    return grouped


async def post(session: AsyncSession, postings: Sequence[Posting]) -> dict[str, WalletState]:
    """Appends the ledger entries and moves the wallets (one statement each), in the caller's
    transaction. Returns every touched wallet's state after the postings."""
    grouped = group_by_org(postings)
    deltas = {org: (sum(p.amount_micros for p in ps), len(ps)) for org, ps in grouped.items()}
    after = await repository.apply_deltas(session, deltas)
    entries = [e for org, ps in grouped.items() for e in ledger_entries_for(after[org], ps)]
    await repository.insert_ledger_entries(session, entries)
    return after
