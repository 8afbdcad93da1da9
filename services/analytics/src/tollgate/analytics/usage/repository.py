"""Every SQL query of the usage domain (SQLAlchemy 2.0 async, PostgreSQL dialect)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.usage.models import UsageDaily, UsageEvent
from tollgate.analytics.usage.schemas import DailyDelta, UsageFact, UsageTotals

# PostgreSQL allows 65,535 bind parameters per statement; 13 columns x 2,000 rows stays well under.
_CHUNK = 2000


class UsageRepository:
    async def insert_new_events(self, session: AsyncSession, facts: Sequence[UsageFact]) -> set[str]:
        """Inserts the facts not already stored; returns the event ids that were actually new."""
        inserted: set[str] = set()
        for start in range(0, len(facts), _CHUNK):
            rows = [_event_row(f) for f in facts[start : start + _CHUNK]]
            stmt = (
                pg_insert(UsageEvent)
                .values(rows)
                .on_conflict_do_nothing(index_elements=[UsageEvent.event_id])
                .returning(UsageEvent.event_id)
            )
            inserted.update((await session.scalars(stmt)).all())
        return inserted

    async def add_to_daily(self, session: AsyncSession, deltas: Sequence[DailyDelta]) -> None:
        """Adds each delta to its rollup row; callers pass one delta per key, in key order."""
        for start in range(0, len(deltas), _CHUNK):
            rows = [_delta_row(d) for d in deltas[start : start + _CHUNK]]
            stmt = pg_insert(UsageDaily).values(rows)
            excluded = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                constraint="pk_usage_daily",
                set_={
                    "requests": UsageDaily.requests + excluded.requests,
                    "errors": UsageDaily.errors + excluded.errors,
                    "tokens_in": UsageDaily.tokens_in + excluded.tokens_in,
                    "tokens_out": UsageDaily.tokens_out + excluded.tokens_out,
                    "cost_micros": UsageDaily.cost_micros + excluded.cost_micros,
                    "latency_ms_sum": UsageDaily.latency_ms_sum + excluded.latency_ms_sum,
                },
            )
            await session.execute(stmt)

    async def totals_by_model(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]:
        return await self._totals(session, org_id, start, end, UsageDaily.model)

    async def totals_by_day(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]:
        return await self._totals(session, org_id, start, end, UsageDaily.day)

    async def _totals(
        self,
        session: AsyncSession,
        org_id: str,
        start: dt.date,
        end: dt.date,
        key: ColumnElement[Any],
    ) -> list[UsageTotals]:
        # SUM(bigint) is numeric in PostgreSQL; cast back so Python gets ints, not Decimals.
        def total(col: ColumnElement[int]) -> ColumnElement[int]:
            return func.sum(col).cast(BigInteger)

        stmt = (
            select(
                key,
                total(UsageDaily.requests),
                total(UsageDaily.errors),
                total(UsageDaily.tokens_in + UsageDaily.tokens_out),
                total(UsageDaily.cost_micros),
                total(UsageDaily.latency_ms_sum),
            )
            .where(UsageDaily.org_id == org_id, UsageDaily.day >= start, UsageDaily.day <= end)
            .group_by(key)
            .order_by(key)
        )
        rows = (await session.execute(stmt)).all()
        return [
            UsageTotals(
                key=k.isoformat() if isinstance(k, dt.date) else str(k),
                requests=requests,
                errors=errors,
                tokens=tokens,
                cost_micros=cost,
                latency_ms_sum=latency,
            )
            for k, requests, errors, tokens, cost, latency in rows
        ]


def _event_row(f: UsageFact) -> dict[str, Any]:
    return {
        "event_id": f.event_id,
        "org_id": f.org_id,
        "key_id": f.key_id,
        "user_id": f.user_id,
        "model": f.model,
        "provider": f.provider,
        "tokens_in": f.tokens_in,
        "tokens_out": f.tokens_out,
        "cost_micros": f.cost_micros,
        "latency_ms": f.latency_ms,
        "status": f.status,
        "stream": f.stream,
        "created_at": f.created_at,
    }


def _delta_row(d: DailyDelta) -> dict[str, Any]:
    return {
        "day": d.day,
        "org_id": d.org_id,
        "model": d.model,
        "requests": d.requests,
        "errors": d.errors,
        "tokens_in": d.tokens_in,
        "tokens_out": d.tokens_out,
        "cost_micros": d.cost_micros,
        "latency_ms_sum": d.latency_ms_sum,
    }
