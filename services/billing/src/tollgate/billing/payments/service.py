"""Recharges: a payment row, a ledger entry and the wallet move together, once per reference."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.holds.service import HoldService
from tollgate.billing.payments import repository
from tollgate.billing.payments.models import Payment
from tollgate.billing.wallets import repository as wallet_repository
from tollgate.billing.wallets import service as wallets
from tollgate.billing.wallets.repository import WalletState
from tollgate.common.errors import InvalidRequest

log = logging.getLogger(__name__)


class IdempotencyKeyReused(InvalidRequest):
    code = "idempotency_key_reused"


@dataclass(frozen=True, slots=True)
class RechargeResult:
    payment_id: int
    key_id: int
    org_id: str
    amount_micros: int
    wallet: WalletState  # the wallet right after this payment's ledger entry
    replayed: bool


async def recharge(
    session: AsyncSession, *, org_id: str, key_id: int, amount_micros: int, payment_ref: str, method: str
) -> RechargeResult:
    """Credits an org for a key. A repeated payment_ref returns the first payment unchanged."""
    if amount_micros <= 0:
        raise InvalidRequest("balance must be positive", param="balance")
    payment_id = await repository.insert_if_new(
        session,
        payment_ref=payment_ref,
        org_id=org_id,
        key_id=key_id,
        amount_micros=amount_micros,
        method=method,
    )
    if payment_id is None:
        return await _replay(session, payment_ref, org_id=org_id, key_id=key_id, amount_micros=amount_micros)
    states = await wallets.post(
        session, [wallets.Posting(org_id, amount_micros, "recharge", payment_ref, key_id)]
    )
    return RechargeResult(payment_id, key_id, org_id, amount_micros, states[org_id], replayed=False)


async def _replay(
    session: AsyncSession, payment_ref: str, *, org_id: str, key_id: int, amount_micros: int
) -> RechargeResult:
    existing = await repository.get_by_ref(session, payment_ref)
    entry = await wallet_repository.ledger_entry_state(session, "recharge", payment_ref)
    if existing is None or entry is None:
        raise RuntimeError(f"payment {payment_ref} exists without its ledger entry")
    if (existing.org_id, existing.key_id, existing.amount_micros) != (org_id, key_id, amount_micros):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for a different recharge.", param="Idempotency-Key"
        )
    balance_after, version = entry
    return RechargeResult(
        existing.id, key_id, org_id, amount_micros, WalletState(org_id, balance_after, version), replayed=True
    )


async def list_payments(
    session: AsyncSession, *, key_id: int | None, org_id: str | None, limit: int, offset: int
) -> tuple[Sequence[Payment], int]:
    """Newest first; `org_id` (an org admin's own organisation) narrows it to that org's payments,
    so another org's key id lists nothing rather than telling whether it exists."""
    return await repository.list_payments(session, key_id=key_id, org_id=org_id, limit=limit, offset=offset)


async def refresh_cached_wallet(holds: HoldService, state: WalletState | None) -> None:
    """After the commit: moves the hot path's cached wallet forward to the committed state."""
    if state is None:
        return
    try:
        await holds.refresh(state)
    except RedisError:
        # Committed already: the cached wallet expires and reloads from PostgreSQL.
        log.warning("cache refresh after a ledger change failed", extra={"org_id": state.org_id})
