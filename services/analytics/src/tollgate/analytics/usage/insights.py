"""Latency percentiles and the recent-errors feed of an organisation, and the rollup by key and
operation that feeds the percentiles and filtered usage reports (written with the other rollups, in
the same transaction, from new facts only: exactly once as they are)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.errors import InvalidParameter
from tollgate.analytics.usage.histogram import LatencySummary, bucket_of, empty_histogram, summarise
from tollgate.analytics.usage.insights_schemas import (
    ErrorEntry,
    ErrorPage,
    LatencyByDay,
    LatencyByHour,
    LatencyByModel,
    LatencyReport,
)
from tollgate.analytics.usage.schemas import (
    SUCCESS_STATUSES,
    GroupBy,
    KeyHourlyDelta,
    LatencyDailyDelta,
    UsageFact,
    UsageFilter,
    UsageQuery,
)

_OPERATION_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
DEFAULT_ERRORS = 20
MAX_ERRORS = 100

# What a failure status means, for people (the event carries the status, never the prompt or the
# provider's error text).
ERROR_MESSAGES = {
    "upstream_error": "The upstream model failed or could not be reached.",
    "upstream_timeout": "The upstream model did not answer in time.",
}


class InsightsStore(Protocol):
    async def latency_histograms(
        self,
        session: AsyncSession,
        org_id: str,
        start: dt.date,
        end: dt.date,
        group_by: GroupBy | None,
        filters: UsageFilter,
    ) -> dict[str | None, tuple[list[int], int]]: ...

    async def recent_errors(
        self, session: AsyncSession, org_id: str, limit: int, before: tuple[dt.datetime, str] | None
    ) -> list[Any]: ...


COUNTS = 9  # requests, errors, tokens in/out, cost, latency sum, cached, cache-write, reasoning tokens


def add_counts(acc: list[Any], f: UsageFact) -> None:
    """Adds one fact to the first COUNTS fields of a rollup accumulator (every rollup sums these)."""
    acc[0] += 1
    acc[1] += f.status not in SUCCESS_STATUSES
    acc[2] += f.tokens_in
    acc[3] += f.tokens_out
    acc[4] += f.cost_micros
    acc[5] += f.latency_ms
    acc[6] += f.tokens_cached_in
    acc[7] += f.tokens_cache_write
    acc[8] += f.tokens_reasoning


def key_hourly_deltas(facts: Iterable[UsageFact]) -> list[KeyHourlyDelta]:
    """Sums facts per (org, UTC hour, key, operation, model), in key order; the latency histogram
    counts answered requests only (failures have their own feed, and a timeout is not a latency)."""
    sums: dict[tuple[str, dt.datetime, int, str, str], list[Any]] = {}
    for f in facts:
        hour = f.created_at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
        key = (f.org_id, hour, f.key_id, f.operation, f.model)
        acc = sums.setdefault(key, [0] * COUNTS + [empty_histogram(), 0])
        add_counts(acc, f)
        if f.status in SUCCESS_STATUSES:
            acc[9][bucket_of(f.latency_ms)] += 1
            acc[10] = max(acc[10], f.latency_ms)
    return [
        KeyHourlyDelta(hour, org, key_id, op, model, *a[:9], tuple(a[9]), a[10])
        for (org, hour, key_id, op, model), a in sorted(sums.items())
    ]


def latency_daily_deltas(deltas: Iterable[KeyHourlyDelta]) -> list[LatencyDailyDelta]:
    """The histograms of key_hourly_deltas summed per (org, UTC day, model), in key order; groups
    with no answered request are left out (they add nothing)."""
    sums: dict[tuple[str, dt.date, str], tuple[list[int], list[int]]] = {}
    for d in deltas:
        if not any(d.latency_buckets):
            continue
        counts, top = sums.setdefault((d.org_id, d.hour.date(), d.model), (empty_histogram(), [0]))
        for i, c in enumerate(d.latency_buckets):
            counts[i] += c
        top[0] = max(top[0], d.latency_ms_max)
    return [
        LatencyDailyDelta(day, org, model, tuple(counts), top[0])
        for (org, day, model), (counts, top) in sorted(sums.items())
    ]


def parse_filters(key_id: str | None, operation: str | None, model: str | None = None) -> UsageFilter:
    parsed_key: int | None = None
    if key_id is not None and key_id != "":
        if not key_id.isdigit() or not 0 < int(key_id) < 2**63:
            raise InvalidParameter("'key_id' must be a positive integer", param="key_id", value=key_id)
        parsed_key = int(key_id)
    if operation is not None and operation != "" and not _OPERATION_RE.match(operation):
        raise InvalidParameter(
            "'operation' must be an operation name such as chat, completion, embedding, image",
            param="operation",
            value=operation,
        )
    if model is not None and len(model) > 512:
        raise InvalidParameter("'model' is too long", param="model", value=model[:64] + "…")
    return UsageFilter(parsed_key, operation or None, model or None)


def parse_error_query(limit: str | None, before: str | None) -> tuple[int, tuple[dt.datetime, str] | None]:
    """`limit` 1..100 (default 20); `before`: a page's `next_before` cursor or an ISO 8601 time."""
    count = DEFAULT_ERRORS
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_ERRORS:
            raise InvalidParameter(
                f"'limit' must be an integer from 1 to {MAX_ERRORS}", param="limit", value=limit
            )
        count = int(limit)
    if not before:
        return count, None
    at, _, event_id = before.partition(",")
    try:
        when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise InvalidParameter(
            "'before' must be a page's next_before or an ISO 8601 time with a zone",
            param="before",
            value=before,
        )
    # a bare time: everything strictly older ("" sorts below every event id at the same time)
    return count, (when, event_id)


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class LatencyQuery:
    usage: UsageQuery  # dates and filters; its group_by is unused
    group_by: GroupBy | None  # None: the whole range only


def parse_latency_group(group_by: str | None) -> GroupBy | None:
    if not group_by:
        return None
    try:
        return GroupBy(group_by)
    except ValueError:
        raise InvalidParameter(
            "'group_by' must be one of: " + ", ".join(g.value for g in GroupBy),
            param="group_by",
            value=group_by,
            allowed_values=[g.value for g in GroupBy],
        ) from None


def _stats(summary: LatencySummary) -> dict[str, Any]:
    return {
        "count": summary.count,
        "p50_ms": summary.p50_ms,
        "p90_ms": summary.p90_ms,
        "p99_ms": summary.p99_ms,
        "max_ms": summary.max_ms,
    }


class InsightsService:
    def __init__(self, store: InsightsStore) -> None:
        self._store = store

    async def latency(self, session: AsyncSession, org_id: str, query: LatencyQuery) -> LatencyReport:
        q = query.usage
        groups = await self._store.latency_histograms(
            session, org_id, q.start, q.end, query.group_by, q.filters
        )
        counts, max_ms = empty_histogram(), 0
        for c, m in groups.values():  # the whole range: the groups summed (one query, not two)
            counts = [a + b for a, b in zip(counts, c, strict=True)]
            max_ms = max(max_ms, m)
        breakdown: Sequence[LatencyByDay | LatencyByHour | LatencyByModel] = []
        if query.group_by is not None:
            rows = [
                (str(k), _stats(summarise(c, m)))
                for k, (c, m) in sorted(groups.items(), key=_by_key)
                if any(c)  # a group of failed requests only has no latency to show
            ]
            if query.group_by is GroupBy.DAY:
                breakdown = [LatencyByDay(date=k, **s) for k, s in rows]
            elif query.group_by is GroupBy.HOUR:
                breakdown = [LatencyByHour(hour=k, **s) for k, s in rows]
            else:  # busiest models first
                rows.sort(key=lambda r: (-r[1]["count"], r[0]))
                breakdown = [LatencyByModel(model_id=k, **s) for k, s in rows]
        return LatencyReport(
            start_date=q.start.isoformat(),
            end_date=q.end.isoformat(),
            **_stats(summarise(counts, max_ms)),
            breakdown=list(breakdown),
        )

    async def errors(
        self, session: AsyncSession, org_id: str, limit: int, before: tuple[dt.datetime, str] | None
    ) -> ErrorPage:
        rows = await self._store.recent_errors(session, org_id, limit + 1, before)
        page = rows[:limit]
        entries = [
            ErrorEntry(
                request_id=r.event_id,
                created_at=_iso(r.created_at),
                model=r.model,
                provider=r.provider,
                key_id=r.key_id,
                operation=r.operation,
                endpoint=r.endpoint,
                stream=r.stream,
                status=r.status,
                message=ERROR_MESSAGES.get(r.status, "The request failed."),
                latency_ms=r.latency_ms,
            )
            for r in page
        ]
        more = len(rows) > limit
        cursor = f"{_iso(page[-1].created_at)},{page[-1].event_id}" if more else None
        return ErrorPage(data=entries, has_more=more, next_before=cursor)


def _by_key(item: tuple[str | None, Any]) -> str:
    return item[0] or ""
