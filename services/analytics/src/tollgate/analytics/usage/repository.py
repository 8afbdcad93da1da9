"""Every SQL query of the usage domain (SQLAlchemy 2.0 async, PostgreSQL dialect)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, TextClause, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.usage.key_rollup import KeyRollupRepository
from tollgate.analytics.usage.models import UsageDaily, UsageHourly
from tollgate.analytics.usage.schemas import DailyDelta, HourlyDelta, UsageFact, UsageTotals

# One fixed statement per write, whatever the batch size: arrays bound as parameters and unnested
# server-side. A multi-row VALUES would be a new statement (compiled by SQLAlchemy, planned by
# PostgreSQL) for every batch size, and that cost per row is most of a consumer's CPU.
_INSERT_NEW_EVENTS = text(
    """
    INSERT INTO usage_events (event_id, org_id, key_id, user_id, model, provider, tokens_in,
                              tokens_out, cost_micros, latency_ms, status, stream, created_at,
                              tokens_cached_in, tokens_cache_write, tokens_reasoning, operation,
                              endpoint)
    SELECT * FROM unnest(
        CAST(:event_ids AS text[]), CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]),
        CAST(:user_ids AS text[]), CAST(:models AS text[]), CAST(:providers AS text[]),
        CAST(:tokens_in AS bigint[]), CAST(:tokens_out AS bigint[]), CAST(:costs AS bigint[]),
        CAST(:latencies AS bigint[]), CAST(:statuses AS text[]), CAST(:streams AS boolean[]),
        CAST(:created AS timestamptz[]), CAST(:cached AS bigint[]), CAST(:written AS bigint[]),
        CAST(:reasoning AS bigint[]), CAST(:operations AS text[]), CAST(:endpoints AS text[])
    )
    ON CONFLICT (event_id, created_at) DO NOTHING
    RETURNING event_id
    """
)

_ROLLUP_UPSERT = """
    INSERT INTO {table} AS d ({bucket}, org_id, model, requests, errors, tokens_in, tokens_out,
                                  cost_micros, latency_ms_sum, tokens_cached_in, tokens_cache_write,
                                  tokens_reasoning)
    SELECT * FROM unnest(
        CAST(:buckets AS {bucket_type}[]), CAST(:org_ids AS text[]), CAST(:models AS text[]),
        CAST(:requests AS bigint[]), CAST(:errors AS bigint[]), CAST(:tokens_in AS bigint[]),
        CAST(:tokens_out AS bigint[]), CAST(:costs AS bigint[]), CAST(:latencies AS bigint[]),
        CAST(:cached AS bigint[]), CAST(:written AS bigint[]), CAST(:reasoning AS bigint[])
    )
    ON CONFLICT ON CONSTRAINT pk_{table} DO UPDATE SET
        requests = d.requests + excluded.requests,
        errors = d.errors + excluded.errors,
        tokens_in = d.tokens_in + excluded.tokens_in,
        tokens_out = d.tokens_out + excluded.tokens_out,
        cost_micros = d.cost_micros + excluded.cost_micros,
        latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
        tokens_cached_in = d.tokens_cached_in + excluded.tokens_cached_in,
        tokens_cache_write = d.tokens_cache_write + excluded.tokens_cache_write,
        tokens_reasoning = d.tokens_reasoning + excluded.tokens_reasoning
"""
_ADD_TO_DAILY = text(_ROLLUP_UPSERT.format(table="usage_daily", bucket="day", bucket_type="date"))
_ADD_TO_HOURLY = text(_ROLLUP_UPSERT.format(table="usage_hourly", bucket="hour", bucket_type="timestamptz"))


def _key(k: object) -> str:
    if isinstance(k, dt.datetime):
        return k.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return k.isoformat() if isinstance(k, dt.date) else str(k)


class UsageRepository(KeyRollupRepository):
    """Facts and the per-model rollups here; the rollup by key and operation in key_rollup."""

    async def insert_new_events(self, session: AsyncSession, facts: Sequence[UsageFact]) -> set[str]:
        """Inserts the facts not already stored; returns the event ids that were actually new."""
        if not facts:
            return set()
        result = await session.execute(
            _INSERT_NEW_EVENTS,
            {
                "event_ids": [f.event_id for f in facts],
                "org_ids": [f.org_id for f in facts],
                "key_ids": [f.key_id for f in facts],
                "user_ids": [f.user_id for f in facts],
                "models": [f.model for f in facts],
                "providers": [f.provider for f in facts],
                "tokens_in": [f.tokens_in for f in facts],
                "tokens_out": [f.tokens_out for f in facts],
                "costs": [f.cost_micros for f in facts],
                "latencies": [f.latency_ms for f in facts],
                "statuses": [f.status for f in facts],
                "streams": [f.stream for f in facts],
                "created": [f.created_at for f in facts],
                "cached": [f.tokens_cached_in for f in facts],
                "written": [f.tokens_cache_write for f in facts],
                "reasoning": [f.tokens_reasoning for f in facts],
                "operations": [f.operation for f in facts],
                "endpoints": [f.endpoint for f in facts],
            },
        )
        return set(result.scalars())

    async def add_to_daily(self, session: AsyncSession, deltas: Sequence[DailyDelta]) -> None:
        """Adds each delta to its rollup row; callers pass one delta per key, in key order."""
        await self._add(session, _ADD_TO_DAILY, [d.day for d in deltas], deltas)

    async def add_to_hourly(self, session: AsyncSession, deltas: Sequence[HourlyDelta]) -> None:
        await self._add(session, _ADD_TO_HOURLY, [d.hour for d in deltas], deltas)

    async def _add(
        self,
        session: AsyncSession,
        stmt: TextClause,
        buckets: Sequence[dt.date],
        deltas: Sequence[DailyDelta] | Sequence[HourlyDelta],
    ) -> None:
        if not deltas:
            return
        await session.execute(
            stmt,
            {
                "buckets": list(buckets),
                "org_ids": [d.org_id for d in deltas],
                "models": [d.model for d in deltas],
                "requests": [d.requests for d in deltas],
                "errors": [d.errors for d in deltas],
                "tokens_in": [d.tokens_in for d in deltas],
                "tokens_out": [d.tokens_out for d in deltas],
                "costs": [d.cost_micros for d in deltas],
                "latencies": [d.latency_ms_sum for d in deltas],
                "cached": [d.tokens_cached_in for d in deltas],
                "written": [d.tokens_cache_write for d in deltas],
                "reasoning": [d.tokens_reasoning for d in deltas],
            },
        )

    async def totals_by_model(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]:
        d = UsageDaily
        return await self._totals(session, org_id, d.model, d, d.day >= start, d.day <= end)

    async def totals_by_day(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]:
        d = UsageDaily
        return await self._totals(session, org_id, d.day, d, d.day >= start, d.day <= end)

    async def totals_by_hour(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]:
        """From the hourly rollup: the UTC hours of the days start..end."""
        first = dt.datetime.combine(start, dt.time(), dt.UTC)
        after = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
        h = UsageHourly
        return await self._totals(session, org_id, h.hour, h, h.hour >= first, h.hour < after)

    async def _totals(
        self,
        session: AsyncSession,
        org_id: str,
        key: ColumnElement[Any],
        t: type[UsageDaily] | type[UsageHourly],
        *window: ColumnElement[bool],
    ) -> list[UsageTotals]:
        # SUM(bigint) is numeric in PostgreSQL; cast back so Python gets ints, not Decimals.
        def total(col: ColumnElement[int]) -> ColumnElement[int]:
            return func.sum(col).cast(BigInteger)

        stmt = (
            select(
                key,
                total(t.requests),
                total(t.errors),
                total(t.tokens_in + t.tokens_out),
                total(t.cost_micros),
                total(t.latency_ms_sum),
                total(t.tokens_cached_in),
                total(t.tokens_cache_write),
                total(t.tokens_reasoning),
            )
            .where(t.org_id == org_id, *window)
            .group_by(key)
            .order_by(key)
        )
        rows = (await session.execute(stmt)).all()
        return [
            UsageTotals(
                key=_key(k),
                requests=requests,
                errors=errors,
                tokens=tokens,
                cost_micros=cost,
                latency_ms_sum=latency,
                cached_tokens=cached,
                cache_write_tokens=written,
                reasoning_tokens=reasoning,
            )
            for k, requests, errors, tokens, cost, latency, cached, written, reasoning in rows
        ]
