"""Usage rules without a database: query parsing, rollup deltas and the SloughGPT report."""

from __future__ import annotations

import datetime as dt

import pytest
from analytics_testkit import T0, MemoryStore, make_fact

from tollgate.analytics.errors import InvalidParameter
from tollgate.analytics.usage.schemas import GroupBy, UsageQuery
from tollgate.analytics.usage.service import UsageService, daily_deltas, parse_usage_query

TODAY = dt.date(2024, 3, 10)


def _parse(start: str | None = None, end: str | None = None, group_by: str | None = None) -> UsageQuery:
    return parse_usage_query(start, end, group_by, today=TODAY, default_days=30, max_days=366)


def test_defaults_are_the_last_30_days_including_today_grouped_by_model() -> None:
    assert _parse() == UsageQuery(dt.date(2024, 2, 10), TODAY, GroupBy.MODEL)


def test_explicit_dates_and_day_grouping() -> None:
    assert _parse("2024-01-01", "2024-01-31", "day") == UsageQuery(
        dt.date(2024, 1, 1), dt.date(2024, 1, 31), GroupBy.DAY
    )


def test_only_end_date_counts_back_the_default_window() -> None:
    assert _parse(end="2024-01-31").start == dt.date(2024, 1, 2)


def test_only_start_date_runs_to_today() -> None:
    assert _parse(start="2024-03-01").end == TODAY


@pytest.mark.parametrize(
    ("start", "end", "group_by", "param"),
    [
        ("2024-13-01", None, None, "start_date"),
        ("20240101", None, None, "start_date"),
        ("yesterday", None, None, "start_date"),
        (None, "2024-02-30", None, "end_date"),
        ("2024-02-01", "2024-01-01", None, "start_date"),
        ("2022-01-01", "2024-01-01", None, "end_date"),
        (None, None, "provider", "group_by"),
    ],
)
def test_bad_parameters_are_rejected_naming_the_parameter(
    start: str | None, end: str | None, group_by: str | None, param: str
) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_usage_query(start, end, group_by, today=TODAY, default_days=30, max_days=366)
    assert info.value.status_code == 400
    assert info.value.details["parameter"] == param


def test_daily_deltas_sum_per_org_day_model_in_key_order_and_count_only_failures_as_errors() -> None:
    facts = [
        make_fact("a", model="m2"),
        make_fact("b", model="m1", status="client_disconnected"),
        make_fact("c", model="m1", status="upstream_timeout", latency_ms=5000),
        make_fact("d", org_id="org_0"),
    ]

    deltas = daily_deltas(facts)

    assert [(d.org_id, d.model, d.requests, d.errors, d.latency_ms_sum) for d in deltas] == [
        ("org_0", "gpt-x", 1, 0, 100),
        ("org_a", "m1", 2, 1, 5100),
        ("org_a", "m2", 1, 0, 100),
    ]
    assert all(d.day == T0.date() for d in deltas)


async def test_record_reports_duplicates_and_rolls_up_each_event_once() -> None:
    store = MemoryStore()
    service = UsageService(store)

    first = await service.record(None, [make_fact("a"), make_fact("a"), make_fact("b")])  # type: ignore[arg-type]
    again = await service.record(None, [make_fact("b"), make_fact("c")])  # type: ignore[arg-type]

    assert (first.inserted, first.duplicates) == (2, 1)
    assert (again.inserted, again.duplicates) == (1, 1)
    assert store.daily[("org_a", T0.date(), "gpt-x")][0] == 3


async def test_report_totals_rates_and_costs_in_credits() -> None:
    store = MemoryStore()
    service = UsageService(store)
    await service.record(
        None,  # type: ignore[arg-type]
        [
            make_fact("1", model="small", cost_micros=1, latency_ms=10),
            make_fact(
                "2",
                model="big",
                cost_micros=1_234_567,
                latency_ms=90,
                tokens_cached_in=6,
                tokens_cache_write=2,
                tokens_reasoning=15,
            ),
            make_fact("3", model="big", cost_micros=0, latency_ms=20, status="upstream_error"),
            make_fact("x", org_id="org_b"),
        ],
    )

    report = await service.report(None, "org_a", _parse("2024-01-01", "2024-01-31"))  # type: ignore[arg-type]

    classes = {"cached_tokens": 6, "cache_write_tokens": 2, "reasoning_tokens": 15}
    none = dict.fromkeys(classes, 0)
    assert report.model_dump() == {
        "total_requests": 3,
        "total_tokens": 90,
        "total_cached_tokens": 6,
        "total_cache_write_tokens": 2,
        "total_reasoning_tokens": 15,
        "average_response_time_ms": 40.0,
        "success_rate": 0.6667,
        "breakdown": [
            {
                "model_id": "big",
                "requests": 2,
                "tokens": 60,
                **classes,
                "avg_response_time": 55.0,
                "cost": 1.234567,
            },
            {
                "model_id": "small",
                "requests": 1,
                "tokens": 30,
                **none,
                "avg_response_time": 10.0,
                "cost": 0.000001,
            },
        ],
    }
    assert store.queries == [("model", "org_a", dt.date(2024, 1, 1), dt.date(2024, 1, 31))]


async def test_report_of_an_empty_range_is_all_zeros() -> None:
    report = await UsageService(MemoryStore()).report(None, "org_a", _parse(group_by="day"))  # type: ignore[arg-type]

    assert report.model_dump() == {
        "total_requests": 0,
        "total_tokens": 0,
        "total_cached_tokens": 0,
        "total_cache_write_tokens": 0,
        "total_reasoning_tokens": 0,
        "average_response_time_ms": 0.0,
        "success_rate": 0.0,
        "breakdown": [],
    }


async def test_report_by_hour_reads_the_hourly_rollup_in_utc_hours() -> None:
    store = MemoryStore()
    service = UsageService(store)
    at = dt.datetime(2024, 1, 15, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-1)))  # 00:59 UTC
    await service.record(None, [make_fact("h1", created_at=at), make_fact("h2", created_at=at)])  # type: ignore[arg-type]

    report = await service.report(None, "org_a", _parse("2024-01-16", "2024-01-16", "hour"))  # type: ignore[arg-type]

    assert [(b.hour, b.requests) for b in report.breakdown] == [("2024-01-16T00:00:00Z", 2)]  # type: ignore[union-attr]
    assert store.queries == [("hour", "org_a", dt.date(2024, 1, 16), dt.date(2024, 1, 16))]
