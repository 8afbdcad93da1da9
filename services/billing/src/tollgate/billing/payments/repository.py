"""Every SQL query on payments."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.payments.models import Payment


async def insert_if_new(
    session: AsyncSession,
    *,
    payment_ref: str,
    org_id: str,
    key_id: int | None,
    amount_micros: int,
    method: str,
) -> int | None:
    """The new payment's id, or None when a payment with this reference already exists (a
    concurrent insert of the same reference waits for the other transaction, then yields None)."""
    stmt = (
        insert(Payment)
        .values(
            payment_ref=payment_ref, org_id=org_id, key_id=key_id, amount_micros=amount_micros, method=method
        )
        .on_conflict_do_nothing(index_elements=[Payment.payment_ref])
        .returning(Payment.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_by_ref(session: AsyncSession, payment_ref: str) -> Payment | None:
    return (
        await session.execute(select(Payment).where(Payment.payment_ref == payment_ref))
    ).scalar_one_or_none()


async def list_payments(
    session: AsyncSession, *, key_id: int | None, limit: int, offset: int
) -> tuple[Sequence[Payment], int]:
    filters = [] if key_id is None else [Payment.key_id == key_id]
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
