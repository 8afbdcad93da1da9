"""Latency percentiles, the error feed and filtered usage on a real PostgreSQL (migrated to 0005)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
from analytics_testkit import T0, make_fact
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.errors import InvalidParameter
from tollgate.analytics.usage.histogram import bucket_of, bucket_range
from tollgate.analytics.usage.insights import InsightsService, LatencyQuery, parse_error_query
from tollgate.analytics.usage.repository import UsageRepository
from tollgate.analytics.usage.schemas import GroupBy, UsageFilter, UsageQuery
from tollgate.analytics.usage.service import UsageService

DAY = T0.date()
MIGRATION = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "0005_key_rollup_latency.py"
LATENCIES = [40, 55, 80, 120, 130, 300, 450, 900, 1_300, 2_600]


def _facts() -> list:
    ok = [
        make_fact(f"ok{i}", latency_ms=ms, created_at=T0 + dt.timedelta(minutes=i))
        for i, ms in enumerate(LATENCIES)
    ]
    return [
        *ok,
        make_fact("emb", key_id=8, operation="embedding", latency_ms=7, model="emb-x"),
        make_fact(
            "err1",
            status="upstream_error",
            latency_ms=20,
            cost_micros=0,
            created_at=T0 + dt.timedelta(minutes=30),
            endpoint="/v1/chat/completions",
        ),
        make_fact(
            "err2",
            status="upstream_timeout",
            latency_ms=60_000,
            cost_micros=0,
            created_at=T0 + dt.timedelta(minutes=31),
        ),
        make_fact("other", org_id="org_b", latency_ms=5_000, status="upstream_error"),
    ]


async def _record(sessions: async_sessionmaker[AsyncSession], facts: list) -> None:
    async with sessions() as session, session.begin():
        await UsageService(UsageRepository()).record(session, facts)


def _latency_query(group_by: GroupBy | None = None, **filters) -> LatencyQuery:
    return LatencyQuery(UsageQuery(DAY, DAY, GroupBy.MODEL, UsageFilter(**filters)), group_by)


def _in_bucket_of(exact: int, value: float | None, top: int) -> bool:
    lower, upper = bucket_range(bucket_of(exact), top)
    return value is not None and lower <= value <= upper


async def test_percentiles_of_answered_requests_fall_in_the_exact_values_buckets(sessions) -> None:
    await _record(sessions, _facts())
    insights = InsightsService(UsageRepository())
    async with sessions() as session:
        report = await insights.latency(session, "org_a", _latency_query(key_id=7, operation="chat"))
        by_hour = await insights.latency(session, "org_a", _latency_query(GroupBy.HOUR))
        by_model = await insights.latency(session, "org_a", _latency_query(GroupBy.MODEL))
        nothing = await insights.latency(session, "org_c", _latency_query())
    assert report.count == len(LATENCIES) and report.max_ms == 2_600  # the failures are not latencies
    assert _in_bucket_of(130, report.p50_ms, 2_600)  # nearest rank 5 of 10
    assert _in_bucket_of(1_300, report.p90_ms, 2_600)
    assert _in_bucket_of(2_600, report.p99_ms, 2_600)
    assert [(b.hour, b.count) for b in by_hour.breakdown] == [("2024-01-15T12:00:00Z", 11)]
    assert [(b.model_id, b.count) for b in by_model.breakdown] == [("gpt-x", 10), ("emb-x", 1)]
    assert (nothing.count, nothing.p50_ms, nothing.breakdown) == (0, None, [])


async def test_a_redelivered_batch_adds_nothing_to_the_histograms(sessions) -> None:
    await _record(sessions, _facts())
    await _record(sessions, _facts())
    async with sessions() as session:
        report = await InsightsService(UsageRepository()).latency(session, "org_a", _latency_query())
        rows = (await session.execute(text("SELECT sum(requests) FROM usage_key_hourly"))).scalar_one()
    assert report.count == len(LATENCIES) + 1
    assert rows == len(_facts())


async def test_error_feed_is_newest_first_paged_and_the_callers_org_only(sessions) -> None:
    await _record(sessions, _facts())
    insights = InsightsService(UsageRepository())
    async with sessions() as session:
        first = await insights.errors(session, "org_a", 1, None)
        second = await insights.errors(session, "org_a", 1, parse_error_query("1", first.next_before)[1])
        other = await insights.errors(session, "org_c", 20, None)
    assert [(e.request_id, e.status, e.latency_ms) for e in first.data] == [
        ("err2", "upstream_timeout", 60_000)
    ]
    assert first.has_more and first.next_before
    assert [(e.request_id, e.endpoint) for e in second.data] == [("err1", "/v1/chat/completions")]
    assert not second.has_more and second.next_before is None
    assert "did not answer in time" in first.data[0].message
    assert (other.data, other.has_more) == ([], False)


async def test_usage_filters_read_the_key_and_operation_rollup(sessions) -> None:
    await _record(sessions, _facts())
    service = UsageService(UsageRepository())
    async with sessions() as session:
        embedding = await service.report(
            session, "org_a", UsageQuery(DAY, DAY, GroupBy.MODEL, UsageFilter(operation="embedding"))
        )
        key7 = await service.report(
            session, "org_a", UsageQuery(DAY, DAY, GroupBy.DAY, UsageFilter(key_id=7))
        )
        everything = await service.report(session, "org_a", UsageQuery(DAY, DAY, GroupBy.DAY))
    assert [(b.model_id, b.requests) for b in embedding.breakdown] == [("emb-x", 1)]
    assert [(b.date, b.requests) for b in key7.breakdown] == [(DAY.isoformat(), 12)]
    assert key7.success_rate == round(10 / 12, 4)
    assert everything.total_requests == 13


def test_error_cursor_and_limit_are_checked() -> None:
    assert parse_error_query(None, None) == (20, None)
    assert parse_error_query("5", "2024-01-15T12:00:00Z")[1] == (T0, "")
    for limit, before in (
        ("0", None),
        ("101", None),
        ("x", None),
        (None, "yesterday"),
        (None, "2024-01-15T12:00:00"),
    ):
        with pytest.raises(InvalidParameter):
            parse_error_query(limit, before)


async def test_a_group_of_failed_requests_only_has_no_latency_row(sessions) -> None:
    await _record(sessions, [make_fact("ok"), make_fact("bad", model="broken", status="upstream_error")])
    async with sessions() as session:
        report = await InsightsService(UsageRepository()).latency(
            session, "org_a", _latency_query(GroupBy.MODEL)
        )
    assert [(b.model_id, b.count) for b in report.breakdown] == [("gpt-x", 1)]
    assert report.count == 1


async def test_migration_backfill_builds_the_same_rollup_as_the_consumer(sessions) -> None:
    """0005 backfills usage_key_hourly from the facts kept: the same rows as recording them builds."""
    spec = importlib.util.spec_from_file_location("migration_0005", MIGRATION)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    await _record(sessions, _facts())
    read = text("SELECT * FROM usage_key_hourly ORDER BY org_id, hour, key_id, operation, model")
    read_daily = text("SELECT * FROM usage_latency_daily ORDER BY org_id, day, model")
    async with sessions() as session, session.begin():
        recorded = (await session.execute(read)).all()
        recorded_daily = (await session.execute(read_daily)).all()
        await session.execute(text("SET LOCAL timezone = 'UTC'"))
        await session.execute(text("TRUNCATE usage_key_hourly, usage_latency_daily"))
        await session.execute(text(migration._BACKFILL))
        await session.execute(text(migration._BACKFILL_DAILY))
        backfilled = (await session.execute(read)).all()
        backfilled_daily = (await session.execute(read_daily)).all()
    assert len(recorded) == 3  # (org_a, key 7, chat), (org_a, key 8, embedding), (org_b, key 7, chat)
    assert backfilled == recorded
    assert [r[:3] for r in recorded_daily] == [
        (DAY, "org_a", "emb-x"),
        (DAY, "org_a", "gpt-x"),
    ]  # org_b: failed only
    assert backfilled_daily == recorded_daily


async def test_unfiltered_reports_read_the_daily_histograms_and_agree_with_the_hourly_ones(sessions) -> None:
    await _record(sessions, _facts())
    insights = InsightsService(UsageRepository())
    async with sessions() as session:
        daily = await insights.latency(session, "org_a", _latency_query(GroupBy.DAY))
        hourly = await insights.latency(session, "org_a", _latency_query(GroupBy.HOUR))
        chat = await insights.latency(session, "org_a", _latency_query(operation="chat"))
        await session.execute(text("DELETE FROM usage_key_hourly"))  # the daily path does not read it
        again = await insights.latency(session, "org_a", _latency_query(GroupBy.MODEL))
    assert (daily.count, daily.p50_ms, daily.p99_ms, daily.max_ms) == (
        hourly.count,
        hourly.p50_ms,
        hourly.p99_ms,
        hourly.max_ms,
    )
    assert [(b.date, b.count) for b in daily.breakdown] == [(DAY.isoformat(), 11)]
    assert chat.count == 10 and again.count == 11
