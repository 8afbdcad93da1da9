"""Every SQL query on credit packages."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.payments.models import CreditPackage


async def list_packages(session: AsyncSession, *, include_inactive: bool) -> Sequence[CreditPackage]:
    stmt = select(CreditPackage).order_by(CreditPackage.sort_order, CreditPackage.price_micros)
    if not include_inactive:
        stmt = stmt.where(CreditPackage.active.is_(True))
    return (await session.execute(stmt)).scalars().all()


async def get(session: AsyncSession, package_id: str) -> CreditPackage | None:
    return await session.get(CreditPackage, package_id)


async def upsert(
    session: AsyncSession,
    *,
    package_id: str,
    name: str,
    price_micros: int,
    credits_micros: int,
    bonus_bps: int,
    active: bool,
    sort_order: int,
) -> CreditPackage:
    values = {
        "name": name,
        "price_micros": price_micros,
        "credits_micros": credits_micros,
        "bonus_bps": bonus_bps,
        "active": active,
        "sort_order": sort_order,
    }
    stmt = (
        insert(CreditPackage)
        .values(id=package_id, **values)
        .on_conflict_do_update(index_elements=[CreditPackage.id], set_={**values, "updated_at": func.now()})
        .returning(CreditPackage)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()
