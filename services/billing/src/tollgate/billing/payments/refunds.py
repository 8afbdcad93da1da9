"""Refunds and admin adjustments: ledger entries with a natural key, written once.

Both may take a wallet below zero. A refund records money that has left (or is leaving) through
the provider: refusing it because the credits were already spent would make the ledger disagree
with the bank, so the organisation is left owing the difference (as Stripe leaves a negative
balance). A negative wallet grants no new holds until it is topped up.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.budgets import low_balance_service as low_balance
from tollgate.billing.payments import refund_repository, repository
from tollgate.billing.payments.arithmetic import refund_credits
from tollgate.billing.payments.models import Adjustment, Payment, Refund
from tollgate.billing.payments.service import IdempotencyKeyReused
from tollgate.billing.wallets import repository as wallet_repository
from tollgate.billing.wallets import service as wallets
from tollgate.billing.wallets.repository import WalletState
from tollgate.common.errors import InvalidRequest, NotFound


class PaymentNotRefundable(InvalidRequest):
    code = "payment_not_refundable"


class RefundExceedsPayment(InvalidRequest):
    code = "refund_exceeds_payment"


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund: Refund
    payment: Payment
    wallet: WalletState | None  # the wallet right after the refund's ledger entry
    replayed: bool


async def _wallet_after(session: AsyncSession, kind: str, ref: str, org_id: str) -> WalletState | None:
    entry = await wallet_repository.ledger_entry_state(session, kind, ref)
    return None if entry is None else WalletState(org_id, entry[0], entry[1])


async def refund(
    session: AsyncSession,
    *,
    payment_id: int,
    amount_micros: int | None,
    refund_ref: str,
    reason: str,
    by_key_id: int | None,
) -> RefundResult:
    """Refunds `amount_micros` of what was paid (all that is left when None). The payment's row
    lock serialises refunds of one payment, so together they never exceed what was paid."""
    payment = await repository.get(session, payment_id, for_update=True)
    if payment is None:
        raise NotFound(f"No payment {payment_id}.", param="payment_id", code="payment_not_found")
    existing = await refund_repository.get_refund(session, refund_ref)
    if existing is not None:
        return await _replay(session, existing, payment, amount_micros)
    if payment.status not in ("succeeded", "refunded"):
        raise PaymentNotRefundable(
            f"Payment {payment_id} is {payment.status}; only a paid payment is refundable."
        )
    left = payment.paid_micros - payment.refunded_micros
    amount = left if amount_micros is None else amount_micros
    if amount <= 0 or amount > left:
        raise RefundExceedsPayment(
            f"Payment {payment_id} has {left} micros left to refund; {amount} were asked.", param="amount"
        )
    credits = refund_credits(
        granted_micros=payment.granted_micros,
        paid_micros=payment.paid_micros,
        refunded_before=payment.refunded_micros,
        amount_micros=amount,
    )
    created = await refund_repository.insert_refund(
        session,
        refund_ref=refund_ref,
        payment_id=payment.id,
        org_id=payment.org_id,
        amount_micros=amount,
        credits_micros=credits,
        reason=reason,
        by_key_id=by_key_id,
    )
    if created is None:  # the same reference, concurrently, for another payment
        raced = await refund_repository.get_refund(session, refund_ref)
        if raced is None:
            raise RuntimeError(f"refund {refund_ref} vanished")
        return await _replay(session, raced, payment, amount_micros)
    status = "refunded" if payment.refunded_micros + amount == payment.paid_micros else payment.status
    await repository.add_refunded(session, payment.id, amount, status)
    await session.refresh(payment)
    wallet = None
    if credits > 0:
        states = await wallets.post(
            session, [wallets.Posting(payment.org_id, -credits, "refund", refund_ref, payment.key_id)]
        )
        wallet = states[payment.org_id]
        # a refund is a debit like usage: it may take the balance below the low-balance threshold
        await low_balance.alert_posted_crossings(session, {payment.org_id: [-credits]}, states)
    return RefundResult(created, payment, wallet, replayed=False)


async def _replay(
    session: AsyncSession, existing: Refund, payment: Payment, amount_micros: int | None
) -> RefundResult:
    if existing.payment_id != payment.id or amount_micros not in (None, existing.amount_micros):
        raise IdempotencyKeyReused(
            "This refund id / Idempotency-Key was already used for another refund.", param="Idempotency-Key"
        )
    wallet = await _wallet_after(session, "refund", existing.refund_ref, existing.org_id)
    return RefundResult(existing, payment, wallet, replayed=True)


@dataclass(frozen=True, slots=True)
class AdjustmentResult:
    adjustment: Adjustment
    wallet: WalletState
    replayed: bool


async def wallet_exists(session: AsyncSession, org_id: str) -> bool:
    return org_id in await wallet_repository.get_many(session, [org_id])


async def adjust(
    session: AsyncSession,
    *,
    org_id: str,
    key_id: int | None,
    amount_micros: int,
    reason: str,
    adjustment_ref: str,
    by_key_id: int | None,
) -> AdjustmentResult:
    """Credits (amount > 0) or debits (amount < 0) an organisation once per reference."""
    if amount_micros == 0:
        raise InvalidRequest("amount must not be zero", param="amount")
    created = await refund_repository.insert_adjustment(
        session,
        adjustment_ref=adjustment_ref,
        org_id=org_id,
        key_id=key_id,
        amount_micros=amount_micros,
        reason=reason,
        by_key_id=by_key_id,
    )
    if created is None:
        existing = await refund_repository.get_adjustment(session, adjustment_ref)
        if existing is None:
            raise RuntimeError(f"adjustment {adjustment_ref} vanished")
        if (existing.org_id, existing.key_id, existing.amount_micros, existing.reason) != (
            org_id,
            key_id,
            amount_micros,
            reason,
        ):
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used for another adjustment.", param="Idempotency-Key"
            )
        wallet = await _wallet_after(session, "adjustment", adjustment_ref, org_id)
        if wallet is None:
            raise RuntimeError(f"adjustment {adjustment_ref} exists without its ledger entry")
        return AdjustmentResult(existing, wallet, replayed=True)
    states = await wallets.post(
        session, [wallets.Posting(org_id, amount_micros, "adjustment", adjustment_ref, key_id)]
    )
    if amount_micros < 0:
        await low_balance.alert_posted_crossings(session, {org_id: [amount_micros]}, states)
    return AdjustmentResult(created, states[org_id], replayed=False)
