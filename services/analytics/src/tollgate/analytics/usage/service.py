"""Usage rules: idempotent storage of facts with their daily rollup, and the SloughGPT report.

The caller owns the transaction (the consumer per batch, the route per request); nothing here commits.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.errors import InvalidParameter
from tollgate.analytics.usage.insights import COUNTS, add_counts, key_hourly_deltas, latency_daily_deltas
from tollgate.analytics.usage.schemas import (
    DailyDelta,
    DayBreakdown,
    GroupBy,
    HourBreakdown,
    HourlyDelta,
    KeyHourlyDelta,
    LatencyDailyDelta,
    ModelBreakdown,
    StoreResult,
    UsageFact,
    UsageFilter,
    UsageQuery,
    UsageReport,
    UsageTotals,
)
from tollgate.common.money import micros_to_credits

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_B = TypeVar("_B", dt.date, dt.datetime)


class UsageStore(Protocol):
    async def insert_new_events(self, session: AsyncSession, facts: Sequence[UsageFact]) -> set[str]: ...

    async def add_to_daily(self, session: AsyncSession, deltas: Sequence[DailyDelta]) -> None: ...

    async def add_to_hourly(self, session: AsyncSession, deltas: Sequence[HourlyDelta]) -> None: ...

    async def add_to_key_hourly(self, session: AsyncSession, deltas: Sequence[KeyHourlyDelta]) -> None: ...

    async def add_to_latency_daily(
        self, session: AsyncSession, deltas: Sequence[LatencyDailyDelta]
    ) -> None: ...

    async def totals_filtered(
        self,
        session: AsyncSession,
        org_id: str,
        start: dt.date,
        end: dt.date,
        group_by: GroupBy,
        filters: UsageFilter,
    ) -> list[UsageTotals]: ...

    async def totals_by_model(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]: ...

    async def totals_by_day(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]: ...

    async def totals_by_hour(
        self, session: AsyncSession, org_id: str, start: dt.date, end: dt.date
    ) -> list[UsageTotals]: ...


def _sums(
    facts: Iterable[UsageFact], bucket: Callable[[dt.datetime], _B]
) -> list[tuple[str, _B, str, list[int]]]:
    """Facts summed per (org, bucket, model), sorted by key so concurrent upserts lock rows in one order."""
    sums: dict[tuple[str, _B, str], list[int]] = {}
    for f in facts:
        key = (f.org_id, bucket(f.created_at), f.model)
        add_counts(sums.setdefault(key, [0] * COUNTS), f)
    return [(org, b, model, a) for (org, b, model), a in sorted(sums.items())]


def utc_day(at: dt.datetime) -> dt.date:
    return at.astimezone(dt.UTC).date()


def utc_hour(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def daily_deltas(facts: Iterable[UsageFact]) -> list[DailyDelta]:
    """Sums facts per (org, UTC day, model), in key order."""
    return [
        DailyDelta(day, org, model, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8])
        for org, day, model, a in _sums(facts, utc_day)
    ]


def hourly_deltas(facts: Iterable[UsageFact]) -> list[HourlyDelta]:
    """Sums facts per (org, UTC hour, model), in key order."""
    return [
        HourlyDelta(hour, org, model, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8])
        for org, hour, model, a in _sums(facts, utc_hour)
    ]


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """Which facts can be stored exactly once: the days whose partitions exist and are kept.

    A fact older than the retention would land where its first copy was dropped (counted twice in
    the rollups), one far ahead of the clock where no partition is made yet: both are skipped.
    """

    retention_days: int
    ahead_days: int = 2

    def contains(self, at: dt.datetime, now: dt.datetime) -> bool:
        today = dt.datetime.combine(utc_day(now), dt.time(), dt.UTC)
        first = today - dt.timedelta(days=self.retention_days)
        return first <= at < today + dt.timedelta(days=self.ahead_days + 1)


def parse_usage_query(
    start_date: str | None,
    end_date: str | None,
    group_by: str | None,
    *,
    today: dt.date,
    default_days: int,
    max_days: int,
    filters: UsageFilter = UsageFilter(),
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
    return UsageQuery(start=start, end=end, group_by=grouping, filters=filters)


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


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UsageService:
    def __init__(
        self,
        store: UsageStore,
        window: StoredWindow | None = None,
        clock: Callable[[], dt.datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._window = window
        self._clock = clock

    async def record(self, session: AsyncSession, facts: Sequence[UsageFact]) -> StoreResult:
        """Stores new facts and adds only those to the rollups, so redelivered events count once.

        Facts are unique by (event id, finish time): the finish time is part of the event, the same
        in every copy, and chooses the day partition, so a copy always meets its original."""
        received = len(facts)
        if self._window is not None:
            now = self._clock()
            facts = [f for f in facts if self._window.contains(f.created_at, now)]
        skipped = received - len(facts)
        if not facts:
            return StoreResult(inserted=0, duplicates=0, out_of_window=skipped)
        new_ids = await self._store.insert_new_events(session, facts)
        # A batch may carry one event twice (a spooled copy next to the original): keep the first.
        fresh: dict[str, UsageFact] = {}
        for f in facts:
            if f.event_id in new_ids and f.event_id not in fresh:
                fresh[f.event_id] = f
        if fresh:
            await self._store.add_to_daily(session, daily_deltas(fresh.values()))
            await self._store.add_to_hourly(session, hourly_deltas(fresh.values()))
            by_key = key_hourly_deltas(fresh.values())
            await self._store.add_to_key_hourly(session, by_key)
            await self._store.add_to_latency_daily(session, latency_daily_deltas(by_key))
        return StoreResult(inserted=len(fresh), duplicates=len(facts) - len(fresh), out_of_window=skipped)

    async def report(self, session: AsyncSession, org_id: str, query: UsageQuery) -> UsageReport:
        if query.filters.any:  # by key / operation: the rollup that has them
            rows = await self._store.totals_filtered(
                session, org_id, query.start, query.end, query.group_by, query.filters
            )
        elif query.group_by is GroupBy.DAY:
            rows = await self._store.totals_by_day(session, org_id, query.start, query.end)
        elif query.group_by is GroupBy.HOUR:
            rows = await self._store.totals_by_hour(session, org_id, query.start, query.end)
        else:
            rows = await self._store.totals_by_model(session, org_id, query.start, query.end)
        requests = sum(r.requests for r in rows)
        errors = sum(r.errors for r in rows)
        breakdown: list[ModelBreakdown] | list[DayBreakdown] | list[HourBreakdown]
        if query.group_by is GroupBy.HOUR:
            breakdown = [
                HourBreakdown(
                    hour=r.key,
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
        elif query.group_by is GroupBy.DAY:
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
