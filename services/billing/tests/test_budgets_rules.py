"""Pure rules of budgets: period keys, what a batch adds to counters, threshold crossings, alerts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from tollgate.billing.budgets.alerting import alert_facts
from tollgate.billing.budgets.repository import BudgetRow
from tollgate.billing.budgets.rules import (
    category_of,
    crossed_thresholds,
    daily_rollups,
    day_key,
    event_periods,
    month_key,
    period_kind,
    spend_increments,
    thresholds_for,
)
from tollgate.billing.settlements.schemas import UsageCharge

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def charge(
    event_id: str, cost: int, *, org: str = "o", key: int | None = 7, at: datetime | None = None, **kw: object
) -> UsageCharge:
    return UsageCharge(
        event_id,
        org,
        key,
        None,
        "m",
        cost,
        "ok",
        occurred_at_ms=ms(at) if at else 0,
        **kw,  # type: ignore[arg-type]
    )


def test_period_keys_are_utc_whatever_the_offset_of_the_moment() -> None:
    late_local = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))  # 22:30 UTC on Nov 30
    assert (month_key(late_local), day_key(late_local)) == ("2026-11", "2026-11-30")
    assert (month_key(NOW), day_key(NOW)) == ("2026-11", "2026-11-23")
    assert (period_kind("2026-11"), period_kind("2026-11-23")) == ("monthly", "daily")


def test_event_periods_agree_with_the_calendar_at_every_midnight_edge() -> None:
    for moment in (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
    ):
        for shift in (timedelta(0), timedelta(milliseconds=-1)):
            at = moment + shift
            month, day, when = event_periods(charge("e", 1, at=at), NOW)
            assert (month, day, when) == (month_key(at), day_key(at), at.date())
    assert event_periods(charge("e", 1), NOW) == ("2026-11", "2026-11-23", NOW.date())


def test_spend_goes_to_the_events_own_periods_for_org_and_key() -> None:
    last_month = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
    out = spend_increments(
        [charge("a", 100, at=NOW), charge("b", 50, at=last_month), charge("c", 0, at=NOW)], NOW
    )
    assert out == {
        ("o", 0, "2026-11"): 100,
        ("o", 0, "2026-11-23"): 100,
        ("o", 7, "2026-11"): 100,
        ("o", 7, "2026-11-23"): 100,
        ("o", 0, "2026-10"): 50,
        ("o", 0, "2026-10-31"): 50,
        ("o", 7, "2026-10"): 50,
        ("o", 7, "2026-10-31"): 50,
    }


def test_events_without_a_time_use_the_fallback_and_keyless_ones_count_for_the_org_only() -> None:
    out = spend_increments([charge("a", 30, key=None), charge("b", 20, key=None)], NOW)
    assert out == {("o", 0, "2026-11"): 50, ("o", 0, "2026-11-23"): 50}


def test_daily_rollup_counts_requests_tokens_and_cost_per_category() -> None:
    yesterday = NOW - timedelta(days=1)
    rows = daily_rollups(
        [
            charge("a", 100, at=NOW, tokens_in=3, tokens_out=4),
            charge("b", 0, at=NOW, tokens_in=1, tokens_out=1),
            charge("c", 9, at=yesterday, operation="fine_tuning"),
        ],
        NOW,
    )
    today = rows[("o", date(2026, 11, 23), "inference")]
    assert (today.cost_micros, today.requests, today.tokens) == (100, 2, 9)
    training = rows[("o", date(2026, 11, 22), "training")]
    assert (training.cost_micros, training.requests, training.tokens) == (9, 1, 0)
    assert category_of("embedding") == category_of("chat") == "inference"


def test_crossings_fire_for_each_threshold_passed_and_only_then() -> None:
    assert crossed_thresholds(0, 49, 100, (50, 80, 100)) == []
    assert crossed_thresholds(0, 50, 100, (50, 80, 100)) == [50]
    assert crossed_thresholds(49, 100, 100, (50, 80, 100)) == [50, 80, 100]
    assert crossed_thresholds(50, 79, 100, (50, 80, 100)) == []  # 50 already crossed before
    assert crossed_thresholds(100, 250, 100, (50, 80, 100)) == []  # beyond the limit: nothing new
    assert crossed_thresholds(0, 800_001, 1_000_001, (80,)) == [80]  # 80% = 800,000.8: exact, no float
    assert crossed_thresholds(0, 800_000, 1_000_001, (80,)) == []
    assert crossed_thresholds(10, 5, 100, (50,)) == [] and crossed_thresholds(0, 10, 0, (50,)) == []
    assert thresholds_for(None) == (50, 80, 100) and thresholds_for(90) == (50, 80, 90, 100)
    assert thresholds_for(80) == (50, 80, 100)


def test_alert_facts_for_budgets_and_quotas_with_their_natural_keys() -> None:
    org_budget = BudgetRow("bud_org", "o", 0, "monthly", 1_000, 90, ("a@x.io",), True)
    key_daily = BudgetRow("bud_key", "o", 7, "daily", 100, None, (), False)
    increments = {("o", 0, "2026-11"): 400, ("o", 7, "2026-11-23"): 60, ("o", 7, "2026-11"): 400}
    totals = {("o", 0, "2026-11"): 910, ("o", 7, "2026-11-23"): 60, ("o", 7, "2026-11"): 850}
    facts = alert_facts(increments, totals, [org_budget, key_daily], {7: 1_000}, {"o": 5})
    got = sorted((f.kind, f.budget_id, f.key_id, f.period, f.threshold_pct) for f in facts)
    assert got == [
        ("budget_threshold", "bud_key", 7, "2026-11-23", 50),
        ("budget_threshold", "bud_org", None, "2026-11", 80),
        ("budget_threshold", "bud_org", None, "2026-11", 90),
        ("quota_threshold", "", 7, "2026-11", 50),
        ("quota_threshold", "", 7, "2026-11", 80),
    ]
    org_alert = next(f for f in facts if f.budget_id == "bud_org" and f.threshold_pct == 90)
    assert (org_alert.spent_micros, org_alert.limit_micros, org_alert.balance_micros) == (910, 1_000, 5)
    assert org_alert.emails == ("a@x.io",)
    assert len({f.alert_id for f in facts}) == len(facts)
