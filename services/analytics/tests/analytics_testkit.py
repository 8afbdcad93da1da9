"""Test helpers shared by the analytics tests (a uniquely named module: no clash with other services)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tollgate.analytics.usage.schemas import UsageFact, UsageTotals
from tollgate.contracts.v1 import events_pb2

T0 = dt.datetime(2024, 1, 15, 12, 0, tzinfo=dt.UTC)


def make_fact(event_id: str, **overrides: Any) -> UsageFact:
    values: dict[str, Any] = {
        "event_id": event_id,
        "org_id": "org_a",
        "key_id": 7,
        "user_id": "user_1",
        "model": "gpt-x",
        "provider": "sim",
        "tokens_in": 10,
        "tokens_out": 20,
        "cost_micros": 1500,
        "latency_ms": 100,
        "status": "ok",
        "stream": False,
        "created_at": T0,
    }
    values.update(overrides)
    return UsageFact(**values)


def encode_usage(fact: UsageFact) -> bytes:
    return events_pb2.UsageRecorded(
        event_id=fact.event_id,
        org_id=fact.org_id,
        key_id=fact.key_id,
        user_id=fact.user_id,
        model=fact.model,
        provider=fact.provider,
        tokens_in=fact.tokens_in,
        tokens_out=fact.tokens_out,
        cost_micros=fact.cost_micros,
        latency_ms=fact.latency_ms,
        status=fact.status,
        stream=fact.stream,
        tokens_cached_in=fact.tokens_cached_in,
        tokens_cache_write=fact.tokens_cache_write,
        tokens_reasoning=fact.tokens_reasoning,
        operation=fact.operation,
        endpoint=fact.endpoint,
        finished_at_unix_ms=int(fact.created_at.timestamp() * 1000),
        started_at_unix_ms=int(fact.created_at.timestamp() * 1000) - fact.latency_ms,
    ).SerializeToString()


class MemoryStore:
    """In-memory UsageStore with the repository's semantics (insert-if-new, additive rollups)."""

    def __init__(self) -> None:
        self.events: dict[str, UsageFact] = {}
        self.daily: dict[tuple[str, dt.date, str], list[int]] = {}
        self.hourly: dict[tuple[str, dt.datetime, str], list[int]] = {}
        self.queries: list[tuple[str, str, dt.date, dt.date]] = []
        self.key_hourly: list[Any] = []  # the deltas given, in order (the SQL sums them)
        self.latency_daily: list[Any] = []

    async def insert_new_events(self, session: Any, facts: Any) -> set[str]:
        new: set[str] = set()
        for f in facts:
            if f.event_id not in self.events:
                self.events[f.event_id] = f
                new.add(f.event_id)
        return new

    async def add_to_daily(self, session: Any, deltas: Any) -> None:
        self._add(self.daily, [(d.org_id, d.day, d.model) for d in deltas], deltas)

    async def add_to_hourly(self, session: Any, deltas: Any) -> None:
        self._add(self.hourly, [(d.org_id, d.hour, d.model) for d in deltas], deltas)

    async def add_to_key_hourly(self, session: Any, deltas: Any) -> None:
        self.key_hourly.extend(deltas)

    async def add_to_latency_daily(self, session: Any, deltas: Any) -> None:
        self.latency_daily.extend(deltas)

    @staticmethod
    def _add(table: dict[Any, list[int]], keys: list[Any], deltas: Any) -> None:
        for key, d in zip(keys, deltas, strict=True):
            acc = table.setdefault(key, [0] * 9)
            for i, v in enumerate(
                (
                    d.requests,
                    d.errors,
                    d.tokens_in,
                    d.tokens_out,
                    d.cost_micros,
                    d.latency_ms_sum,
                    d.tokens_cached_in,
                    d.tokens_cache_write,
                    d.tokens_reasoning,
                )
            ):
                acc[i] += v

    async def totals_by_model(self, session: Any, org_id: str, start: dt.date, end: dt.date) -> list[Any]:
        self.queries.append(("model", org_id, start, end))
        return self._totals(org_id, start, end, lambda day, model: model)

    async def totals_by_day(self, session: Any, org_id: str, start: dt.date, end: dt.date) -> list[Any]:
        self.queries.append(("day", org_id, start, end))
        return self._totals(org_id, start, end, lambda day, model: day.isoformat())

    async def totals_by_hour(self, session: Any, org_id: str, start: dt.date, end: dt.date) -> list[Any]:
        self.queries.append(("hour", org_id, start, end))
        return self._totals(
            org_id, start, end, lambda hour, model: hour.strftime("%Y-%m-%dT%H:%M:%SZ"), self.hourly
        )

    def _totals(
        self,
        org_id: str,
        start: dt.date,
        end: dt.date,
        key_of: Any,
        table: dict[Any, list[int]] | None = None,
    ) -> list[Any]:
        sums: dict[str, list[int]] = {}
        for (org, bucket, model), a in (self.daily if table is None else table).items():
            day = bucket.date() if isinstance(bucket, dt.datetime) else bucket
            if org == org_id and start <= day <= end:
                acc = sums.setdefault(key_of(bucket, model), [0] * 8)
                for i, v in enumerate((a[0], a[1], a[2] + a[3], a[4], a[5], a[6], a[7], a[8])):
                    acc[i] += v
        return [
            UsageTotals(k, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]) for k, a in sorted(sums.items())
        ]
