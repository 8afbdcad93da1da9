"""SQL of the rollup by key and operation (`usage_key_hourly`, migration 0005) and of the error feed.

Filtered usage reports and latency percentiles read the rollup (one row per org, hour, key,
operation and model), never the facts; the error feed reads the facts through a partial index that
holds only failed requests, newest first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.usage.histogram import BUCKETS, histogram_literal
from tollgate.analytics.usage.schemas import (
    GroupBy,
    KeyHourlyDelta,
    LatencyDailyDelta,
    UsageFilter,
    UsageTotals,
)

# Counts of the histogram are added element by element (arrays of equal length, BUCKETS each).
_ADD_TO_KEY_HOURLY = text(
    """
    INSERT INTO usage_key_hourly AS d (hour, org_id, key_id, operation, model, requests, errors,
        tokens_in, tokens_out, cost_micros, latency_ms_sum, tokens_cached_in, tokens_cache_write,
        tokens_reasoning, latency_buckets, latency_ms_max)
    SELECT u.hour, u.org_id, u.key_id, u.operation, u.model, u.requests, u.errors, u.tokens_in,
           u.tokens_out, u.costs, u.latencies, u.cached, u.written, u.reasoning,
           CAST(u.hist AS bigint[]), u.max_ms
    FROM unnest(
        CAST(:hours AS timestamptz[]), CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]),
        CAST(:operations AS text[]), CAST(:models AS text[]), CAST(:requests AS bigint[]),
        CAST(:errors AS bigint[]), CAST(:tokens_in AS bigint[]), CAST(:tokens_out AS bigint[]),
        CAST(:costs AS bigint[]), CAST(:latencies AS bigint[]), CAST(:cached AS bigint[]),
        CAST(:written AS bigint[]), CAST(:reasoning AS bigint[]), CAST(:hists AS text[]),
        CAST(:max_ms AS bigint[])
    ) AS u(hour, org_id, key_id, operation, model, requests, errors, tokens_in, tokens_out, costs,
           latencies, cached, written, reasoning, hist, max_ms)
    ON CONFLICT ON CONSTRAINT pk_usage_key_hourly DO UPDATE SET
        requests = d.requests + excluded.requests,
        errors = d.errors + excluded.errors,
        tokens_in = d.tokens_in + excluded.tokens_in,
        tokens_out = d.tokens_out + excluded.tokens_out,
        cost_micros = d.cost_micros + excluded.cost_micros,
        latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum,
        tokens_cached_in = d.tokens_cached_in + excluded.tokens_cached_in,
        tokens_cache_write = d.tokens_cache_write + excluded.tokens_cache_write,
        tokens_reasoning = d.tokens_reasoning + excluded.tokens_reasoning,
        latency_buckets = ARRAY(
            SELECT a + b FROM unnest(d.latency_buckets, excluded.latency_buckets) WITH ORDINALITY
                AS t(a, b, i) ORDER BY i),
        latency_ms_max = greatest(d.latency_ms_max, excluded.latency_ms_max)
    """
)

_ADD_TO_LATENCY_DAILY = text(
    """
    INSERT INTO usage_latency_daily AS d (day, org_id, model, latency_buckets, latency_ms_max)
    SELECT u.day, u.org_id, u.model, CAST(u.hist AS bigint[]), u.max_ms
    FROM unnest(CAST(:days AS date[]), CAST(:org_ids AS text[]), CAST(:models AS text[]),
                CAST(:hists AS text[]), CAST(:max_ms AS bigint[])) AS u(day, org_id, model, hist, max_ms)
    ON CONFLICT ON CONSTRAINT pk_usage_latency_daily DO UPDATE SET
        latency_buckets = ARRAY(
            SELECT a + b FROM unnest(d.latency_buckets, excluded.latency_buckets) WITH ORDINALITY
                AS t(a, b, i) ORDER BY i),
        latency_ms_max = greatest(d.latency_ms_max, excluded.latency_ms_max)
    """
)

_GROUP_KEYS = {
    None: "NULL::text",
    GroupBy.MODEL: "model",
    GroupBy.DAY: "to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    GroupBy.HOUR: "to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:00:00\"Z\"')",
}

_TOTALS = """
    SELECT {key} AS k, sum(requests)::bigint, sum(errors)::bigint, sum(tokens_in + tokens_out)::bigint,
           sum(cost_micros)::bigint, sum(latency_ms_sum)::bigint, sum(tokens_cached_in)::bigint,
           sum(tokens_cache_write)::bigint, sum(tokens_reasoning)::bigint
    FROM usage_key_hourly WHERE {where} GROUP BY 1 ORDER BY 1
"""

# One pass over the rows with one sum per bucket (no unnest: a month of a busy org is tens of
# thousands of rows, and a row per (row, bucket) would be fifty times as many).
_BUCKET_SUMS = ", ".join(f"sum(latency_buckets[{i}])::bigint" for i in range(1, BUCKETS + 1))
_HISTOGRAMS = f"""
    SELECT {{key}} AS k, max(latency_ms_max)::bigint, {_BUCKET_SUMS}
    FROM {{table}} WHERE {{where}} GROUP BY 1 ORDER BY 1
"""
# unfiltered, by day, by model or overall: the daily histograms (a row per day and model)
_DAILY_KEYS = {None: "NULL::text", GroupBy.MODEL: "model", GroupBy.DAY: "to_char(day, 'YYYY-MM-DD')"}

FAILED = "status NOT IN ('ok', 'client_disconnected')"  # as usage.schemas.SUCCESS_STATUSES
_RECENT_ERRORS = text(
    f"""
    SELECT event_id, created_at, model, provider, key_id, operation, endpoint, stream, status, latency_ms
    FROM usage_events
    WHERE org_id = :org_id AND {FAILED}
      AND (CAST(:before_at AS timestamptz) IS NULL
           OR (created_at, event_id) < (CAST(:before_at AS timestamptz), CAST(:before_id AS text)))
    ORDER BY created_at DESC, event_id DESC
    LIMIT :limit
    """
)


def _window(org_id: str, start: dt.date, end: dt.date, filters: UsageFilter) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {
        "org_id": org_id,
        "first": dt.datetime.combine(start, dt.time(), dt.UTC),
        "after": dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC),
    }
    where = ["org_id = :org_id", "hour >= :first", "hour < :after"]
    if filters.key_id is not None:
        where.append("key_id = :key_id")
        params["key_id"] = filters.key_id
    if filters.operation is not None:
        where.append("operation = :operation")
        params["operation"] = filters.operation
    if filters.model is not None:
        where.append("model = :model")
        params["model"] = filters.model
    return " AND ".join(where), params


class KeyRollupRepository:
    async def add_to_key_hourly(self, session: AsyncSession, deltas: Sequence[KeyHourlyDelta]) -> None:
        """Adds each delta to its row; callers pass one delta per key, in key order."""
        if not deltas:
            return
        await session.execute(
            _ADD_TO_KEY_HOURLY,
            {
                "hours": [d.hour for d in deltas],
                "org_ids": [d.org_id for d in deltas],
                "key_ids": [d.key_id for d in deltas],
                "operations": [d.operation for d in deltas],
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
                "hists": [histogram_literal(d.latency_buckets) for d in deltas],
                "max_ms": [d.latency_ms_max for d in deltas],
            },
        )

    async def add_to_latency_daily(self, session: AsyncSession, deltas: Sequence[LatencyDailyDelta]) -> None:
        if not deltas:
            return
        await session.execute(
            _ADD_TO_LATENCY_DAILY,
            {
                "days": [d.day for d in deltas],
                "org_ids": [d.org_id for d in deltas],
                "models": [d.model for d in deltas],
                "hists": [histogram_literal(d.latency_buckets) for d in deltas],
                "max_ms": [d.latency_ms_max for d in deltas],
            },
        )

    async def totals_filtered(
        self,
        session: AsyncSession,
        org_id: str,
        start: dt.date,
        end: dt.date,
        group_by: GroupBy,
        filters: UsageFilter,
    ) -> list[UsageTotals]:
        where, params = _window(org_id, start, end, filters)
        stmt = text(_TOTALS.format(key=_GROUP_KEYS[group_by], where=where))
        rows = (await session.execute(stmt, params)).all()
        return [UsageTotals(str(r[0]), *r[1:]) for r in rows]

    async def latency_histograms(
        self,
        session: AsyncSession,
        org_id: str,
        start: dt.date,
        end: dt.date,
        group_by: GroupBy | None,
        filters: UsageFilter,
    ) -> dict[str | None, tuple[list[int], int]]:
        """Per group (None: the whole range): the summed bucket counts and the largest latency."""
        if not filters.any and group_by in _DAILY_KEYS:
            params: dict[str, Any] = {"org_id": org_id, "start": start, "end": end}
            where = "org_id = :org_id AND day >= :start AND day <= :end"
            stmt = text(
                _HISTOGRAMS.format(key=_DAILY_KEYS[group_by], table="usage_latency_daily", where=where)
            )
        else:
            where, params = _window(org_id, start, end, filters)
            stmt = text(_HISTOGRAMS.format(key=_GROUP_KEYS[group_by], table="usage_key_hourly", where=where))
        rows = (await session.execute(stmt, params)).all()
        return {key: ([int(c or 0) for c in counts], int(max_ms or 0)) for key, max_ms, *counts in rows}

    async def recent_errors(
        self,
        session: AsyncSession,
        org_id: str,
        limit: int,
        before: tuple[dt.datetime, str] | None,
    ) -> list[Any]:
        params = {
            "org_id": org_id,
            "limit": limit,
            "before_at": before[0] if before else None,
            "before_id": before[1] if before else "",
        }
        return list((await session.execute(_RECENT_ERRORS, params)).all())
