"""Pure rules of budgets and quotas: period keys, what a batch adds to each counter, threshold
crossings. No I/O here; settlement and the routes call these with data they loaded."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tollgate.billing.settlements.schemas import UsageCharge

# Every budget and quota alerts at these percentages, plus the budget's own alert_threshold.
DEFAULT_THRESHOLDS = (50, 80, 100)
ORG_SCOPE = 0  # key_id of an organisation-wide budget or counter
PERIODS = ("daily", "monthly")
CATEGORIES = ("inference", "training", "storage", "network")
_TRAINING_OPERATIONS = frozenset({"training", "fine_tuning", "fine-tuning"})


def month_key(moment: datetime) -> str:
    """The monthly period a moment falls in, UTC: "2026-11"."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def day_key(moment: datetime) -> str:
    """The daily period a moment falls in, UTC: "2026-11-23"."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def period_key(period: str, moment: datetime) -> str:
    return day_key(moment) if period == "daily" else month_key(moment)


def period_kind(key: str) -> str:
    """ "daily" for "2026-11-23", "monthly" for "2026-11"."""
    return "daily" if len(key) == 10 else "monthly"


def category_of(operation: str) -> str:
    """/cost/stats' breakdown: gateway usage is inference; training jobs' usage is training."""
    return "training" if operation in _TRAINING_OPERATIONS else "inference"


CounterKey = tuple[str, int, str]  # (org_id, key_id or ORG_SCOPE, period key)


_DAY_MS = 86_400_000


@functools.lru_cache(maxsize=4096)
def _periods_of_day(day_index: int) -> tuple[str, str, date]:
    """(month key, day key, date) of the UTC day `day_index` days after the epoch."""
    day = date(1970, 1, 1) + timedelta(days=day_index)
    iso = day.isoformat()
    return iso[:7], iso, day


def event_periods(charge: UsageCharge, fallback: datetime) -> tuple[str, str, date]:
    """The UTC (month key, day key, date) the usage happened in, from the event itself, so a
    redelivery or a restart attributes it to the same periods; `fallback` (the settling
    transaction's time) only for events without a time. Integer math and a cache: no strftime
    per event."""
    if charge.occurred_at_ms > 0:
        return _periods_of_day(charge.occurred_at_ms // _DAY_MS)
    moment = fallback.astimezone(UTC)
    return month_key(moment), day_key(moment), moment.date()


def spend_increments(charges: Iterable[UsageCharge], fallback: datetime) -> dict[CounterKey, int]:
    """What each (org or key, month, day) counter gains from first-time charges with a cost."""
    out: dict[CounterKey, int] = {}
    for c in charges:
        if c.cost_micros <= 0:
            continue
        month, day, _ = event_periods(c, fallback)
        scopes = (ORG_SCOPE,) if not c.key_id else (ORG_SCOPE, c.key_id)
        for scope in scopes:
            for period in (month, day):
                key = (c.org_id, scope, period)
                out[key] = out.get(key, 0) + c.cost_micros
    return out


@dataclass(slots=True)
class DailyCost:
    cost_micros: int = 0
    requests: int = 0
    tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


def daily_rollups(
    charges: Iterable[UsageCharge], fallback: datetime
) -> dict[tuple[str, date, str], DailyCost]:
    """(org, UTC day, category) -> cost, requests and tokens of first-time charges (free ones too)."""
    out: dict[tuple[str, date, str], DailyCost] = {}
    for c in charges:
        day = event_periods(c, fallback)[2]
        row = out.setdefault((c.org_id, day, category_of(c.operation)), DailyCost())
        row.cost_micros += c.cost_micros
        row.requests += 1
        row.tokens += c.tokens_in + c.tokens_out
        row.cached_tokens += c.tokens_cached_in
        row.cache_write_tokens += c.tokens_cache_write
        row.reasoning_tokens += c.tokens_reasoning
    return out


def thresholds_for(alert_threshold_pct: int | None) -> tuple[int, ...]:
    extra = () if alert_threshold_pct is None else (alert_threshold_pct,)
    return tuple(sorted(set(DEFAULT_THRESHOLDS + extra)))


def crossed_thresholds(previous: int, new: int, limit: int, thresholds: Sequence[int]) -> list[int]:
    """Thresholds (percent of `limit`) that spend crossed going from `previous` to `new`: those with
    previous < pct% of limit <= new. Integer arithmetic, so 80% of 1,000,001 micros is exact."""
    if limit <= 0 or new <= previous:
        return []
    return [t for t in sorted(thresholds) if previous * 100 < t * limit <= new * 100]


def percentage_used(spent: int, limit: int) -> float:
    return round(spent * 100 / limit, 2) if limit > 0 else 0.0
