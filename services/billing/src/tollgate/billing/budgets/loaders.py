"""PostgreSQL reads and writes the hot path's HoldService needs, each in its own short transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.budgets import repository
from tollgate.billing.budgets.repository import LimitsSnapshot
from tollgate.billing.holds.service import LimitsLoader, QuotaRecorder


def limits_loader(sessions: async_sessionmaker[AsyncSession]) -> LimitsLoader:
    async def load(org_id: str, month: str, day: str) -> LimitsSnapshot:
        async with sessions.begin() as session:
            return await repository.limits_snapshot(session, org_id, month, day)

    return load


def quota_recorder(sessions: async_sessionmaker[AsyncSession]) -> QuotaRecorder:
    async def record(org_id: str, key_id: int, quota_micros: int) -> None:
        async with sessions.begin() as session:
            await repository.record_quota(session, org_id, key_id, quota_micros)

    return record
