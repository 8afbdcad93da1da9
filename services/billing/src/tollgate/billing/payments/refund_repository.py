"""Every SQL query on refunds and admin adjustments."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.payments.models import Adjustment, Refund


async def insert_refund(
    session: AsyncSession,
    *,
    refund_ref: str,
    payment_id: int,
    org_id: str,
    amount_micros: int,
    credits_micros: int,
    reason: str,
    by_key_id: int | None,
) -> Refund | None:
    """The new refund, or None when one with this reference exists already."""
    stmt = (
        insert(Refund)
        .values(
            refund_ref=refund_ref,
            payment_id=payment_id,
            org_id=org_id,
            amount_micros=amount_micros,
            credits_micros=credits_micros,
            reason=reason,
            by_key_id=by_key_id,
        )
        .on_conflict_do_nothing(index_elements=[Refund.refund_ref])
        .returning(Refund)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_refund(session: AsyncSession, refund_ref: str) -> Refund | None:
    return (await session.execute(select(Refund).where(Refund.refund_ref == refund_ref))).scalar_one_or_none()


async def insert_adjustment(
    session: AsyncSession,
    *,
    adjustment_ref: str,
    org_id: str,
    key_id: int | None,
    amount_micros: int,
    reason: str,
    by_key_id: int | None,
) -> Adjustment | None:
    stmt = (
        insert(Adjustment)
        .values(
            adjustment_ref=adjustment_ref,
            org_id=org_id,
            key_id=key_id,
            amount_micros=amount_micros,
            reason=reason,
            by_key_id=by_key_id,
        )
        .on_conflict_do_nothing(index_elements=[Adjustment.adjustment_ref])
        .returning(Adjustment)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_adjustment(session: AsyncSession, adjustment_ref: str) -> Adjustment | None:
    return (
        await session.execute(select(Adjustment).where(Adjustment.adjustment_ref == adjustment_ref))
    ).scalar_one_or_none()
