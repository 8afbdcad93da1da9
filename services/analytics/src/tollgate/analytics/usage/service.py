"""Usage rules: idempotent storage of facts with their daily rollup, and the SloughGPT report.

The caller owns the transaction (the consumer per batch, the route per request); nothing here commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.errors import InvalidParameter
from tollgate.analytics.usage.schemas import (
    DailyDelta,
    DayBreakdown,
    GroupBy,
    ModelBreakdown,
    StoreResult,
    UsageFact,
    UsageQuery,
    UsageReport,
    UsageTotals,
)
from tollgate.common.money import micros_to_credits

# A disconnecting client was still served (and billed); only failures on our side count as errors.
SUCCESS_STATUSES = frozenset({"ok", "client_disconnected"})

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UsageStore(Protocol):
    async def insert_new_events(self, session: AsyncSession, facts: Sequence[UsageFact]) -> set[str]: ...

    async def add_to_daily(self, session: AsyncSession, deltas: Sequence[DailyDelta]) -> None: ...

    async def totals_by_model(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]: ...

    async def totals_by_day(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]: ...


def daily_deltas(facts: Iterable[UsageFact]) -> list[DailyDelta]:
    """Sums facts per (org, day, model), sorted by key so concurrent upserts lock rows in one order."""
    sums: dict[tuple[str, dt.date, str], list[int]] = {}
    for f in facts:
        key = (f.org_id, f.created_at.astimezone(dt.UTC).date(), f.model)
        acc = sums.setdefault(key, [0, 0, 0, 0, 0, 0, 0, 0, 0])
        acc[0] += 1
        acc[1] += f.status not in SUCCESS_STATUSES
        acc[2] += f.tokens_in
        acc[3] += f.tokens_out
        acc[4] += f.cost_micros
        acc[5] += f.latency_ms
        acc[6] += f.tokens_cached_in
        acc[7] += f.tokens_cache_write
        acc[8] += f.tokens_reasoning
    return [
        DailyDelta(
            day=day,
            org_id=org,
            model=model,
            requests=a[0],
            errors=a[1],
            tokens_in=a[2],
            tokens_out=a[3],
            cost_micros=a[4],
            latency_ms_sum=a[5],
            tokens_cached_in=a[6],
            tokens_cache_write=a[7],
            tokens_reasoning=a[8],
        )
        for (org, day, model), a in sorted(sums.items())
    ]


def parse_usage_query(
    start_date: str | None,
    end_date: str | None,
    group_by: str | None,
    *,
    today: dt.date,
    default_days: int,
    max_days: int,
) -> UsageQuery:
    """Validates the query string; missing dates mean the last `default_days` days up to today (UTC)."""
    end = _parse_date("end_date", end_date) if end_date else None
    start = _parse_date("start_date", start_date) if start_date else None
    if end is None:
        end = today if start is None or start <= today else start
    if start is None:
        start = end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise InvalidParameter(
            "'start_date' must not be after 'end_date'",
            param="start_date",
            value=start.isoformat(),
            end_date=end.isoformat(),
        )
    if (end - start).days + 1 > max_days:
        raise InvalidParameter(
            f"The date range must not exceed {max_days} days",
            param="end_date",
            value=end.isoformat(),
            max_days=max_days,
        )
    raw_group = group_by or GroupBy.MODEL.value
    try:
        grouping = GroupBy(raw_group)
    except ValueError:
        raise InvalidParameter(
            "'group_by' must be one of: " + ", ".join(g.value for g in GroupBy),
            param="group_by",
            value=raw_group,
            allowed_values=[g.value for g in GroupBy],
        ) from None
    return UsageQuery(start=start, end=end, group_by=grouping)


def _parse_date(name: str, raw: str) -> dt.date:
    try:
        # fromisoformat alone would also take "20240101" or week dates; the seed documents YYYY-MM-DD.
        if not _DATE_RE.match(raw):
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise InvalidParameter(
            f"'{name}' must be a date formatted YYYY-MM-DD", param=name, value=raw, format="YYYY-MM-DD"
        ) from None


def _avg(total: int, count: int) -> float:
    return round(total / count, 2) if count else 0.0


class UsageService:
    def __init__(self, store: UsageStore) -> None:
        self._store = store

    async def record(self, session: AsyncSession, facts: Sequence[UsageFact]) -> StoreResult:
        """Stores new facts and adds only those to the rollups, so redelivered events count once."""
        if not facts:
            return StoreResult(inserted=0, duplicates=0)
        new_ids = await self._store.insert_new_events(session, facts)
        # A batch may carry one event twice (a spooled copy next to the original): keep the first.
        fresh: dict[str, UsageFact] = {}
        for f in facts:
            if f.event_id in new_ids and f.event_id not in fresh:
                fresh[f.event_id] = f
        if fresh:
            await self._store.add_to_daily(session, daily_deltas(fresh.values()))
        return StoreResult(inserted=len(fresh), duplicates=len(facts) - len(fresh))

    async def report(self, session: AsyncSession, org_id: str, query: UsageQuery) -> UsageReport:
        if query.group_by is GroupBy.DAY:
            rows = await self._store.totals_by_day(session, org_id, query.start, query.end)
        else:
            rows = await self._store.totals_by_model(session, org_id, query.start, query.end)
        requests = sum(r.requests for r in rows)
        errors = sum(r.errors for r in rows)
        breakdown: list[ModelBreakdown] | list[DayBreakdown]
        if query.group_by is GroupBy.DAY:
            breakdown = [
                DayBreakdown(
                    date=r.key,
                    requests=r.requests,
                    tokens=r.tokens,
                    cached_tokens=r.cached_tokens,
                    cache_write_tokens=r.cache_write_tokens,
                    reasoning_tokens=r.reasoning_tokens,
                    avg_response_time=_avg(r.latency_ms_sum, r.requests),
                    cost=micros_to_credits(r.cost_micros),
                )
                for r in rows
            ]
        else:
            # Largest consumers first, as a usage breakdown is read.
            breakdown = [
                ModelBreakdown(
                    model_id=r.key,
                    requests=r.requests,
                    tokens=r.tokens,
                    cached_tokens=r.cached_tokens,
                    cache_write_tokens=r.cache_write_tokens,
                    reasoning_tokens=r.reasoning_tokens,
                    avg_response_time=_avg(r.latency_ms_sum, r.requests),
                    cost=micros_to_credits(r.cost_micros),
                )
                for r in sorted(rows, key=lambda r: (-r.requests, r.key))
            ]
        return UsageReport(
            total_requests=requests,
            total_tokens=sum(r.tokens for r in rows),
            total_cached_tokens=sum(r.cached_tokens for r in rows),
            total_cache_write_tokens=sum(r.cache_write_tokens for r in rows),
            total_reasoning_tokens=sum(r.reasoning_tokens for r in rows),
            average_response_time_ms=_avg(sum(r.latency_ms_sum for r in rows), requests),
            success_rate=round((requests - errors) / requests, 4) if requests else 0.0,
            breakdown=breakdown,
        )
