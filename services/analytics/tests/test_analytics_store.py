"""Idempotent storage and rollups on a real PostgreSQL database (migrated from 0001)."""

from __future__ import annotations

import asyncio
import datetime as dt

from analytics_testkit import T0, make_fact
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.usage.models import UsageDaily, UsageEvent
from tollgate.analytics.usage.repository import UsageRepository
from tollgate.analytics.usage.schemas import GroupBy, UsageQuery
from tollgate.analytics.usage.service import UsageService

DAY1 = T0.date()
DAY2 = DAY1 + dt.timedelta(days=1)


def _batch() -> list:
    return [
        make_fact("e1", tokens_cached_in=4, tokens_cache_write=1, tokens_reasoning=7),
        make_fact("e2", model="gpt-y", tokens_in=5, tokens_out=5, cost_micros=700, latency_ms=300),
        make_fact("e3", status="upstream_error", tokens_in=1, tokens_out=0, cost_micros=0, latency_ms=50),
        make_fact("e4", created_at=T0 + dt.timedelta(days=1), cost_micros=2_000_000, latency_ms=40),
    ]


async def _record(sessions: async_sessionmaker[AsyncSession], facts: list) -> tuple[int, int]:
    service = UsageService(UsageRepository())
    async with sessions() as session, session.begin():
        result = await service.record(session, facts)
    return result.inserted, result.duplicates


async def _daily(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple, tuple]:
    async with sessions() as session:
        rows = (await session.scalars(select(UsageDaily))).all()
    return {
        (r.org_id, r.day, r.model): (
            r.requests,
            r.errors,
            r.tokens_in,
            r.tokens_out,
            r.cost_micros,
            r.latency_ms_sum,
        )
        for r in rows
    }


async def test_new_facts_are_stored_and_rolled_up_per_org_day_model(sessions) -> None:
    assert await _record(sessions, _batch()) == (4, 0)

    assert await _daily(sessions) == {
        ("org_a", DAY1, "gpt-x"): (2, 1, 11, 20, 1500, 150),
        ("org_a", DAY1, "gpt-y"): (1, 0, 5, 5, 700, 300),
        ("org_a", DAY2, "gpt-x"): (1, 0, 10, 20, 2_000_000, 40),
    }
    async with sessions() as session:
        stored = await session.get(UsageEvent, ("e3", T0))
    assert stored is not None
    assert (stored.status, stored.created_at, stored.key_id) == ("upstream_error", T0, 7)


async def test_redelivered_batch_is_reported_as_duplicates_and_not_counted_again(sessions) -> None:
    await _record(sessions, _batch())
    before = await _daily(sessions)

    assert await _record(sessions, _batch()) == (0, 4)
    assert await _daily(sessions) == before


async def test_partly_new_batch_adds_only_the_new_events(sessions) -> None:
    await _record(sessions, [make_fact("e1")])

    inserted = await _record(sessions, [make_fact("e1"), make_fact("e5"), make_fact("e5")])

    assert inserted == (1, 2)
    assert await _daily(sessions) == {("org_a", DAY1, "gpt-x"): (2, 0, 20, 40, 3000, 200)}


async def test_concurrent_deliveries_of_one_event_count_it_once(sessions) -> None:
    facts = [make_fact(f"c{i}") for i in range(20)]

    results = await asyncio.gather(*(_record(sessions, facts) for _ in range(4)))

    assert sum(inserted for inserted, _ in results) == 20
    assert await _daily(sessions) == {("org_a", DAY1, "gpt-x"): (20, 0, 200, 400, 30_000, 2000)}


async def test_rolled_up_day_follows_utc_even_for_offset_timestamps(sessions) -> None:
    late_evening_west = dt.datetime(2024, 1, 15, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-8)))

    await _record(sessions, [make_fact("tz", created_at=late_evening_west)])

    assert list(await _daily(sessions)) == [("org_a", dt.date(2024, 1, 16), "gpt-x")]


async def test_report_reads_only_the_callers_org_within_inclusive_dates(sessions) -> None:
    await _record(
        sessions,
        [
            *_batch(),
            make_fact("other-org", org_id="org_b", tokens_in=1000),
            make_fact("before", created_at=T0 - dt.timedelta(days=1)),
            make_fact("after", created_at=T0 + dt.timedelta(days=2)),
        ],
    )
    service = UsageService(UsageRepository())

    async with sessions() as session:
        by_model = await service.report(session, "org_a", UsageQuery(DAY1, DAY2, GroupBy.MODEL))
        by_day = await service.report(session, "org_a", UsageQuery(DAY1, DAY2, GroupBy.DAY))

    assert by_model.total_requests == 4
    assert by_model.total_tokens == 30 + 10 + 1 + 30
    assert by_model.success_rate == 0.75
    assert by_model.average_response_time_ms == round((100 + 300 + 50 + 40) / 4, 2)
    classes = {"cached_tokens": 4, "cache_write_tokens": 1, "reasoning_tokens": 7}
    none = dict.fromkeys(classes, 0)
    assert [b.model_dump() for b in by_model.breakdown] == [
        {
            "model_id": "gpt-x",
            "requests": 3,
            "tokens": 61,
            **classes,
            "avg_response_time": 63.33,
            "cost": 2.0015,
        },
        {
            "model_id": "gpt-y",
            "requests": 1,
            "tokens": 10,
            **none,
            "avg_response_time": 300.0,
            "cost": 0.0007,
        },
    ]
    assert (
        by_model.total_cached_tokens,
        by_model.total_cache_write_tokens,
        by_model.total_reasoning_tokens,
    ) == (
        4,
        1,
        7,
    )
    assert [(b.date, b.requests) for b in by_day.breakdown] == [("2024-01-15", 3), ("2024-01-16", 1)]
