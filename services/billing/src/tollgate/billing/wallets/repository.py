"""Every SQL query on wallets and the ledger. Batched statements take arrays (one round trip)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class WalletState:
    org_id: str
    balance_micros: int
    version: int


@dataclass(frozen=True, slots=True)
class NewLedgerEntry:
    org_id: str
    amount_micros: int
    kind: str
    ref: str
    key_id: int | None
    balance_after: int
    wallet_version: int


# The CTE's insert is invisible to the second SELECT (same snapshot), hence the UNION.
_GET_OR_CREATE = text(
    """
    WITH ins AS (
        INSERT INTO wallets (org_id, balance_micros, version) VALUES (:org_id, 0, 0)
        ON CONFLICT (org_id) DO NOTHING
        RETURNING org_id, balance_micros, version
    )
    SELECT org_id, balance_micros, version FROM ins
    UNION ALL
    SELECT org_id, balance_micros, version FROM wallets WHERE org_id = :org_id
    LIMIT 1
    """
)

# Creates the wallet if missing, adds `delta` and bumps the version by `entries`, row-locked.
_APPLY_DELTAS = text(
    """
    INSERT INTO wallets AS w (org_id, balance_micros, version, updated_at)
    SELECT d.org_id, d.delta, d.entries, now()
    FROM unnest(CAST(:org_ids AS text[]), CAST(:deltas AS bigint[]), CAST(:entries AS bigint[]))
        AS d(org_id, delta, entries)
    ON CONFLICT (org_id) DO UPDATE SET
        balance_micros = w.balance_micros + excluded.balance_micros,
        version = w.version + excluded.version,
        updated_at = excluded.updated_at
    RETURNING w.org_id, w.balance_micros, w.version
    """
)

_GET_MANY = text(
    "SELECT org_id, balance_micros, version FROM wallets WHERE org_id = ANY(CAST(:org_ids AS text[]))"
)

_INSERT_LEDGER = text(
    """
    INSERT INTO ledger_entries (org_id, amount_micros, kind, ref, key_id, balance_after, wallet_version)
    SELECT * FROM unnest(
        CAST(:org_ids AS text[]), CAST(:amounts AS bigint[]), CAST(:kinds AS text[]),
        CAST(:refs AS text[]), CAST(:key_ids AS bigint[]), CAST(:balances AS bigint[]),
        CAST(:versions AS bigint[])
    )
    """
)

# `kind <> 'usage'` is the predicate of the partial unique index on (kind, ref) (migration 0007):
# written out, it lets the planner use that index whatever the bound kind (a generic plan cannot
# prove it from `kind = $1`). Usage entries have no index by ref: find them via usage_settlements.
_LEDGER_BY_REF = text(
    "SELECT balance_after, wallet_version FROM ledger_entries"
    " WHERE kind = :kind AND ref = :ref AND kind <> 'usage'"
)


async def get_or_create(session: AsyncSession, org_id: str) -> WalletState:
    row = (await session.execute(_GET_OR_CREATE, {"org_id": org_id})).one()
    return WalletState(row.org_id, row.balance_micros, row.version)


async def apply_deltas(session: AsyncSession, deltas: dict[str, tuple[int, int]]) -> dict[str, WalletState]:
    """deltas: org_id -> (amount to add, number of ledger entries). Returns the wallets after."""
    if not deltas:
        return {}
    org_ids = sorted(deltas)  # a stable lock order between concurrent writers
    result = await session.execute(
        _APPLY_DELTAS,
        {
            "org_ids": org_ids,
            "deltas": [deltas[o][0] for o in org_ids],
            "entries": [deltas[o][1] for o in org_ids],
        },
    )
    return {r.org_id: WalletState(r.org_id, r.balance_micros, r.version) for r in result}


async def get_many(session: AsyncSession, org_ids: Sequence[str]) -> dict[str, WalletState]:
    if not org_ids:
        return {}
    result = await session.execute(_GET_MANY, {"org_ids": list(org_ids)})
    return {r.org_id: WalletState(r.org_id, r.balance_micros, r.version) for r in result}


async def insert_ledger_entries(session: AsyncSession, entries: Sequence[NewLedgerEntry]) -> None:
    if not entries:
        return
    await session.execute(
        _INSERT_LEDGER,
        {
            "org_ids": [e.org_id for e in entries],
            "amounts": [e.amount_micros for e in entries],
            "kinds": [e.kind for e in entries],
            "refs": [e.ref for e in entries],
            "key_ids": [e.key_id for e in entries],
            "balances": [e.balance_after for e in entries],
            "versions": [e.wallet_version for e in entries],
        },
    )


async def ledger_entry_state(session: AsyncSession, kind: str, ref: str) -> tuple[int, int] | None:
    """(balance_after, wallet_version) of the entry with this natural key, if any. Not for usage
    entries (unique per event through usage_settlements, not by ref)."""
    if kind == "usage":
        raise ValueError("usage ledger entries are not looked up by ref")
    row = (await session.execute(_LEDGER_BY_REF, {"kind": kind, "ref": ref})).one_or_none()
    return None if row is None else (row.balance_after, row.wallet_version)
