"""Buying a credit package: a pending payment at the provider, credited once when its provider
says it succeeded (however many times the webhook arrives, concurrently or not)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.payments import package_repository, repository
from tollgate.billing.payments.arithmetic import bonus_micros
from tollgate.billing.payments.models import CreditPackage, Payment
from tollgate.billing.payments.providers import (
    EVENT_FAILED,
    EVENT_SUCCEEDED,
    CheckoutRequest,
    PaymentProvider,
    ProviderEvent,
)
from tollgate.billing.payments.repository import NewPendingPayment
from tollgate.billing.payments.service import IdempotencyKeyReused
from tollgate.billing.wallets import service as wallets
from tollgate.billing.wallets.repository import WalletState
from tollgate.common.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)


class AmountMismatch(InvalidRequest):
    code = "amount_mismatch"


async def active_package(session: AsyncSession, package_id: str) -> CreditPackage:
    package = await package_repository.get(session, package_id)
    if package is None or not package.active:
        raise NotFound(
            f"No credit package {package_id!r} is on sale.", param="package_id", code="package_not_found"
        )
    return package


def purchase_ref(org_id: str, idempotency_key: str) -> str:
    return f"purchase:{org_id}:{idempotency_key}"


async def existing_purchase(session: AsyncSession, payment_ref: str, package_id: str) -> Payment | None:
    """The payment an Idempotency-Key already made, if any (another package: refused)."""
    payment = await repository.get_by_ref(session, payment_ref)
    if payment is not None and payment.package_id != package_id:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used to buy another package.", param="Idempotency-Key"
        )
    return payment


async def open_checkout(
    provider: PaymentProvider, package: CreditPackage, *, payment_ref: str, org_id: str, key_id: int
) -> NewPendingPayment:
    """Asks the provider for a checkout (outside any transaction: it may be a network call)."""
    checkout = await provider.create_checkout(
        CheckoutRequest(
            payment_ref, org_id, package.price_micros, package.currency, f"Tollgate {package.name}"
        )
    )
    return NewPendingPayment(
        payment_ref=payment_ref,
        org_id=org_id,
        key_id=key_id,
        package_id=package.id,
        provider=provider.name,
        provider_payment_id=checkout.provider_payment_id,
        checkout_url=checkout.url,
        paid_micros=package.price_micros,
        currency=package.currency,
        amount_micros=package.credits_micros,
        bonus_micros=bonus_micros(package.credits_micros, package.bonus_bps),
    )


async def record_pending(session: AsyncSession, new: NewPendingPayment) -> Payment:
    payment = await repository.insert_pending(session, new)
    if payment is None:  # a concurrent request with the same Idempotency-Key won
        payment = await existing_purchase(session, new.payment_ref, new.package_id)
        if payment is None:
            raise RuntimeError(f"payment {new.payment_ref} vanished")
    return payment


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    outcome: str  # credited | failed | duplicate | ignored
    payment_id: int | None
    org_id: str | None
    wallet: WalletState | None  # set when credited: the cache must move to it
    granted_micros: int = 0


_IGNORED = WebhookOutcome("ignored", None, None, None)


async def apply_event(session: AsyncSession, provider: str, event: ProviderEvent) -> WebhookOutcome:
    """Applies one verified provider event in the caller's transaction. A payment is credited (its
    package credits and its bonus, two ledger entries under the payment's reference) only on its
    pending/failed -> succeeded transition, taken under the payment's row lock."""
    first_time = await repository.record_event(
        session,
        provider=provider,
        event_id=event.event_id,
        event_type=event.event_type,
        provider_payment_id=event.provider_payment_id,
    )
    if not first_time:
        return WebhookOutcome("duplicate", None, None, None)
    if event.event_type not in (EVENT_SUCCEEDED, EVENT_FAILED):
        return _IGNORED
    payment = await repository.get_by_provider_id(
        session, provider, event.provider_payment_id, for_update=True
    )
    if payment is None:
        raise NotFound("No payment matches this provider payment id.", code="payment_not_found")
    _check_amount(payment, event)
    if event.event_type == EVENT_FAILED:
        if payment.status != "pending":
            return WebhookOutcome("ignored", payment.id, payment.org_id, None)
        await repository.set_status(session, payment.id, "failed")
        return WebhookOutcome("failed", payment.id, payment.org_id, None)
    if payment.status not in ("pending", "failed"):
        return WebhookOutcome("duplicate", payment.id, payment.org_id, None)
    await repository.set_status(session, payment.id, "succeeded", succeeded=True)
    postings = [
        wallets.Posting(
            payment.org_id, payment.amount_micros, "recharge", payment.payment_ref, payment.key_id
        )
    ]
    if payment.bonus_micros > 0:
        postings.append(
            wallets.Posting(
                payment.org_id, payment.bonus_micros, "bonus", payment.payment_ref, payment.key_id
            )
        )
    states = await wallets.post(session, postings)
    return WebhookOutcome(
        "credited", payment.id, payment.org_id, states[payment.org_id], payment.granted_micros
    )


def _check_amount(payment: Payment, event: ProviderEvent) -> None:
    if event.amount_micros is not None and event.amount_micros != payment.paid_micros:
        raise AmountMismatch(
            f"The provider reports {event.amount_micros} micros paid;"
            f" the payment is for {payment.paid_micros}."
        )
    if event.currency is not None and event.currency.lower() != payment.currency:
        raise AmountMismatch(
            f"The provider reports currency {event.currency!r}; the payment is in {payment.currency!r}."
        )
