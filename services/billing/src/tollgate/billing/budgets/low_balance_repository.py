"""SQL of low-balance settings, and the wallet row lock that orders them against ledger postings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.wallets.repository import WalletState


@dataclass(frozen=True, slots=True)
class LowBalanceRow:
    org_id: str
    threshold_micros: int
    alert_emails: tuple[str, ...] | None  # None: the organisation's monthly budget's addresses
    # The addresses an alert goes to now: its own, else the org-wide monthly budget's.
    effective_emails: tuple[str, ...]


# One statement for the settlement: each org's setting with the addresses its alert would use.
_SETTINGS_OF = text(
    """
    SELECT s.org_id, s.threshold_micros, s.alert_emails,
           coalesce(s.alert_emails, b.alert_emails, CAST('{}' AS text[])) AS effective_emails
    FROM low_balance_settings s
    LEFT JOIN budgets b ON b.org_id = s.org_id AND b.key_id = 0 AND b.period = 'monthly'
    WHERE s.org_id = ANY(CAST(:orgs AS text[]))
    """
)

_UPSERT = text(
    """
    INSERT INTO low_balance_settings (org_id, threshold_micros, alert_emails, updated_at)
    VALUES (:org_id, :threshold, :emails, now())
    ON CONFLICT (org_id) DO UPDATE SET
        threshold_micros = excluded.threshold_micros, alert_emails = excluded.alert_emails,
        updated_at = excluded.updated_at
    """
)

_ENSURE_WALLET = text(
    "INSERT INTO wallets (org_id, balance_micros, version) VALUES (:o, 0, 0) ON CONFLICT (org_id) DO NOTHING"
)
_LOCK_WALLET = text("SELECT org_id, balance_micros, version FROM wallets WHERE org_id = :o FOR UPDATE")


async def settings_of(session: AsyncSession, org_ids: Sequence[str]) -> dict[str, LowBalanceRow]:
    if not org_ids:
        return {}
    rows = await session.execute(_SETTINGS_OF, {"orgs": list(org_ids)})
    return {
        r.org_id: LowBalanceRow(
            r.org_id,
            int(r.threshold_micros),
            None if r.alert_emails is None else tuple(r.alert_emails),
            tuple(r.effective_emails or ()),
        )
        for r in rows
    }


async def upsert(session: AsyncSession, org_id: str, threshold: int, emails: Sequence[str] | None) -> None:
    await session.execute(
        _UPSERT,
        {"org_id": org_id, "threshold": threshold, "emails": None if emails is None else list(emails)},
    )


async def delete(session: AsyncSession, org_id: str) -> bool:
    result = await session.execute(
        text("DELETE FROM low_balance_settings WHERE org_id = :o RETURNING org_id"), {"o": org_id}
    )
    return result.first() is not None


async def lock_wallet(session: AsyncSession, org_id: str) -> WalletState:
    """The org's wallet (created at zero if missing), row-locked until the transaction ends: the
    same lock every ledger posting takes, so a setting change and a posting never interleave."""
    await session.execute(_ENSURE_WALLET, {"o": org_id})
    row = (await session.execute(_LOCK_WALLET, {"o": org_id})).one()
    return WalletState(row.org_id, int(row.balance_micros), int(row.version))
