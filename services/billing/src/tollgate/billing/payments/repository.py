"""Every SQL query on payments and provider webhook events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.payments.models import Payment, ProviderEvent


async def insert_if_new(
    session: AsyncSession,
    *,
    payment_ref: str,
    org_id: str,
    key_id: int | None,
    amount_micros: int,
    method: str,
) -> int | None:
    """An admin recharge (paid what it credits, succeeded at once). The new payment's id, or None
    when a payment with this reference already exists (a concurrent insert of the same reference
    waits for the other transaction, then yields None)."""
    stmt = (
        insert(Payment)
        .values(
            payment_ref=payment_ref,
            org_id=org_id,
            key_id=key_id,
            amount_micros=amount_micros,
            paid_micros=amount_micros,
            method=method,
            status="succeeded",
            succeeded_at=func.now(),
        )
        .on_conflict_do_nothing(index_elements=[Payment.payment_ref])
        .returning(Payment.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class NewPendingPayment:
    payment_ref: str
    org_id: str
    key_id: int | None
    package_id: str
    provider: str
    provider_payment_id: str
    checkout_url: str | None
    paid_micros: int
    currency: str
    amount_micros: int
    bonus_micros: int


async def insert_pending(session: AsyncSession, new: NewPendingPayment) -> Payment | None:
    """A package purchase awaiting its provider's webhook; None if the reference is taken."""
    stmt = (
        insert(Payment)
        .values(
            payment_ref=new.payment_ref,
            org_id=new.org_id,
            key_id=new.key_id,
            amount_micros=new.amount_micros,
            bonus_micros=new.bonus_micros,
            paid_micros=new.paid_micros,
            currency=new.currency,
            method="package",
            status="pending",
            provider=new.provider,
            provider_payment_id=new.provider_payment_id,
            package_id=new.package_id,
            checkout_url=new.checkout_url,
        )
        .on_conflict_do_nothing(index_elements=[Payment.payment_ref])
        .returning(Payment)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_by_ref(session: AsyncSession, payment_ref: str) -> Payment | None:
    return (
        await session.execute(select(Payment).where(Payment.payment_ref == payment_ref))
    ).scalar_one_or_none()


async def get(session: AsyncSession, payment_id: int, *, for_update: bool = False) -> Payment | None:
    stmt = select(Payment).where(Payment.id == payment_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_by_provider_id(
    session: AsyncSession, provider: str, provider_payment_id: str, *, for_update: bool = False
) -> Payment | None:
    stmt = select(Payment).where(
        Payment.provider == provider, Payment.provider_payment_id == provider_payment_id
    )
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_status(session: AsyncSession, payment_id: int, status: str, *, succeeded: bool = False) -> None:
    values: dict[str, object] = {"status": status, "updated_at": func.now()}
    if succeeded:
        values["succeeded_at"] = func.now()
    await session.execute(update(Payment).where(Payment.id == payment_id).values(**values))


async def add_refunded(session: AsyncSession, payment_id: int, amount_micros: int, status: str) -> None:
    await session.execute(
        update(Payment)
        .where(Payment.id == payment_id)
        .values(refunded_micros=Payment.refunded_micros + amount_micros, status=status, updated_at=func.now())
    )


async def record_event(
    session: AsyncSession, *, provider: str, event_id: str, event_type: str, provider_payment_id: str
) -> bool:
    """True the first time this provider event is seen (its row is written with the caller's
    transaction); False for a redelivery."""
    stmt = (
        insert(ProviderEvent)
        .values(
            provider=provider,
            event_id=event_id,
            event_type=event_type,
            provider_payment_id=provider_payment_id,
        )
        .on_conflict_do_nothing(index_elements=[ProviderEvent.provider, ProviderEvent.event_id])
        .returning(ProviderEvent.event_id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


async def list_payments(
    session: AsyncSession, *, key_id: int | None, org_id: str | None, limit: int, offset: int
) -> tuple[Sequence[Payment], int]:
    filters = []
    if key_id is not None:
        filters.append(Payment.key_id == key_id)
    if org_id is not None:
        filters.append(Payment.org_id == org_id)
    rows = (
        (
            await session.execute(
                select(Payment).where(*filters).order_by(Payment.id.desc()).limit(limit).offset(offset)
            )
        )
        .scalars()
        .all()
    )
    total = (await session.execute(select(func.count()).select_from(Payment).where(*filters))).scalar_one()
    return rows, int(total)
