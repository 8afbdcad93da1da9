"""Every SQL query of the usage domain (SQLAlchemy 2.0 async, PostgreSQL dialect)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.usage.models import UsageDaily
from tollgate.analytics.usage.schemas import DailyDelta, UsageFact, UsageTotals

# One fixed statement per write, whatever the batch size: arrays bound as parameters and unnested
# server-side. A multi-row VALUES would be a new statement (compiled by SQLAlchemy, planned by
# PostgreSQL) for every batch size, and that cost per row is most of a consumer's CPU.
_INSERT_NEW_EVENTS = text(
    """
    INSERT INTO usage_events (event_id, org_id, key_id, user_id, model, provider, tokens_in,
                              tokens_out, cost_micros, latency_ms, status, stream, created_at,
                              tokens_cached_in, tokens_cache_write, tokens_reasoning)
    SELECT * FROM unnest(
        CAST(:event_ids AS text[]), CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]),
        CAST(:user_ids AS text[]), CAST(:models AS text[]), CAST(:providers AS text[]),
        CAST(:tokens_in AS bigint[]), CAST(:tokens_out AS bigint[]), CAST(:costs AS bigint[]),
        CAST(:latencies AS bigint[]), CAST(:statuses AS text[]), CAST(:streams AS boolean[]),
        CAST(:created AS timestamptz[]), CAST(:cached AS bigint[]), CAST(:written AS bigint[]),
        CAST(:reasoning AS bigint[])
    )
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)

_ADD_TO_DAILY = text(
    """
    INSERT INTO usage_daily AS d (day, org_id, model, requests, errors, tokens_in, tokens_out,
                                  cost_micros, latency_ms_sum, tokens_cached_in, tokens_cache_write,
                                  tokens_reasoning)
    SELECT * FROM unnest(
        CAST(:days AS date[]), CAST(:org_ids AS text[]), CAST(:models AS text[]),
        CAST(:requests AS bigint[]), CAST(:errors AS bigint[]), CAST(:tokens_in AS bigint[]),
        CAST(:tokens_out AS bigint[]), CAST(:costs AS bigint[]), CAST(:latencies AS bigint[]),
        CAST(:cached AS bigint[]), CAST(:written AS bigint[]), CAST(:reasoning AS bigint[])
    )
    ON CONFLICT ON CONSTRAINT pk_usage_daily DO UPDATE SET
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
)


class UsageRepository:
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
            },
        )
        return set(result.scalars())

    async def add_to_daily(self, session: AsyncSession, deltas: Sequence[DailyDelta]) -> None:
        """Adds each delta to its rollup row; callers pass one delta per key, in key order."""
        if not deltas:
            return
        await session.execute(
            _ADD_TO_DAILY,
            {
                "days": [d.day for d in deltas],
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
                total(UsageDaily.tokens_cached_in),
                total(UsageDaily.tokens_cache_write),
                total(UsageDaily.tokens_reasoning),
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
                cached_tokens=cached,
                cache_write_tokens=written,
                reasoning_tokens=reasoning,
            )
            for k, requests, errors, tokens, cost, latency, cached, written, reasoning in rows
        ]
