"""Budget and cost-statistics rules: who may act on which org, validation, and the numbers.
Gets its session from the caller and never commits."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.alerts.service import record_alerts
from tollgate.billing.budgets import repository
from tollgate.billing.budgets.alerting import alert_facts
from tollgate.billing.budgets.errors import InvalidParameter
from tollgate.billing.budgets.repository import BudgetRow, DailyRow
from tollgate.billing.budgets.rules import CATEGORIES, ORG_SCOPE, month_key, period_key
from tollgate.billing.budgets.schemas import BudgetSet
from tollgate.billing.wallets import repository as wallet_repository
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden
from tollgate.common.money import credits_to_micros

MAX_BUDGET_MICROS = 1_000_000_000 * 1_000_000  # 1e9 credits, the recharge cap
MAX_STATS_DAYS = 366
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def target_org(principal: Principal, org_id: str | None, *, write: bool) -> str:
    """Platform admin keys act on any org (default: their own); org owners/admins on their own
    org; members may read their org's budgets and stats but not change them."""
    if principal.is_admin:
        return org_id or principal.org_id
    if org_id and org_id != principal.org_id:
        raise Forbidden("Only a platform admin key may act on another organisation.", param="org_id")
    if write and not principal.is_org_admin:
        raise Forbidden(
            "Setting a budget needs an owner or admin of the organisation.", code="org_admin_required"
        )
    return principal.org_id


def validate(body: BudgetSet) -> tuple[int | None, int | None, tuple[str, ...]]:
    """(limit micros or None to remove, alert threshold percent, e-mails), or InvalidParameter."""
    limit = None
    if body.monthly_budget is not None:
        if not body.monthly_budget.is_finite() or body.monthly_budget <= 0:
            raise InvalidParameter(
                "monthly_budget must be a positive amount of credits (or null to remove the budget).",
                param="monthly_budget",
                value=str(body.monthly_budget),
            )
        limit = credits_to_micros(body.monthly_budget)
        if not 0 < limit <= MAX_BUDGET_MICROS:
            raise InvalidParameter(
                "monthly_budget must be between 0.000001 and 1000000000 credits.",
                param="monthly_budget",
                value=str(body.monthly_budget),
            )
    pct = None
    if body.alert_threshold is not None:
        scaled = body.alert_threshold * 100
        if (
            not body.alert_threshold.is_finite()
            or scaled != scaled.to_integral_value()
            or not 1 <= scaled <= 100
        ):
            raise InvalidParameter(
                "alert_threshold must be a fraction between 0.01 and 1 in whole percent (e.g. 0.8).",
                param="alert_threshold",
                value=str(body.alert_threshold),
                allowed_range=[0.01, 1.0],
            )
        pct = int(scaled)
    return limit, pct, validate_emails(body.alert_emails)


def validate_emails(addresses: Sequence[str]) -> tuple[str, ...]:
    """Trimmed, deduplicated addresses, or InvalidParameter naming the first bad one."""
    emails = tuple(dict.fromkeys(e.strip() for e in addresses))
    for email in emails:
        if len(email) > 254 or not _EMAIL.match(email):
            raise InvalidParameter(
                "alert_emails must hold e-mail addresses.", param="alert_emails", value=email
            )
    return emails


async def set_budget(
    session: AsyncSession, org_id: str, body: BudgetSet, now: datetime
) -> tuple[BudgetRow | None, bool]:
    """Creates or replaces the (org, key, period) budget: (the budget, True). A null limit removes
    it: (None, whether there was one to remove), as DELETE /cost/budget answers."""
    limit, pct, emails = validate(body)
    key_id = body.key_id or ORG_SCOPE
    await repository.bump_version(session, org_id)
    if limit is None:
        return None, await repository.delete_budget(session, org_id, key_id, body.period)
    row = BudgetRow(
        f"bud_{uuid.uuid4().hex}", org_id, key_id, body.period, limit, pct, emails, body.hard_limit
    )
    saved = await repository.upsert_budget(session, row)
    await alert_reached_thresholds(session, saved, now)
    return saved, True


async def alert_reached_thresholds(session: AsyncSession, budget: BudgetRow, now: datetime) -> list[str]:
    """A budget set (or lowered) below what the period already spent has crossed those thresholds
    now: they fire here, once, as settlement would have fired them (same natural keys)."""
    period = period_key(budget.period, now)
    spent = await repository.lock_counter(session, budget.org_id, budget.key_id, period)
    wallet = (await wallet_repository.get_many(session, [budget.org_id])).get(budget.org_id)
    counter = (budget.org_id, budget.key_id, period)
    facts = alert_facts(
        {counter: spent},
        {counter: spent},
        [budget],
        {},
        {budget.org_id: wallet.balance_micros if wallet else 0},
    )
    return await record_alerts(session, facts) if facts else []


async def delete_budget(session: AsyncSession, org_id: str, key_id: int | None, period: str) -> bool:
    await repository.bump_version(session, org_id)
    return await repository.delete_budget(session, org_id, key_id or ORG_SCOPE, period)


@dataclass(frozen=True, slots=True)
class BudgetView:
    budget: BudgetRow
    current_period: str
    spent_micros: int


async def budgets_with_spend(session: AsyncSession, org_id: str, now: datetime) -> list[BudgetView]:
    budgets = await repository.budgets_of(session, [org_id])
    budgets.sort(key=lambda b: (b.key_id, b.period))
    periods = sorted({period_key(b.period, now) for b in budgets})
    spent = await repository.spent_in(session, org_id, periods) if periods else {}
    views = []
    for b in budgets:
        current = period_key(b.period, now)
        views.append(BudgetView(b, current, spent.get((b.key_id, current), 0)))
    return views


def parse_date(name: str, value: str | None, default: date) -> date:
    if value is None or value == "":
        return default
    try:
        if not _DATE.match(value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(f"{name} must be a date as YYYY-MM-DD.", param=name, value=value) from None


def stats_window(start: str | None, end: str | None, granularity: str, now: datetime) -> tuple[date, date]:
    today = now.astimezone(UTC).date()
    start_d = parse_date("start_date", start, today.replace(day=1))
    end_d = parse_date("end_date", end, today)
    if end_d < start_d:
        raise InvalidParameter("end_date must not be before start_date.", param="end_date", value=end)
    if (end_d - start_d).days + 1 > MAX_STATS_DAYS:
        raise InvalidParameter(
            f"The range may span at most {MAX_STATS_DAYS} days.", param="end_date", value=end
        )
    if granularity not in ("daily", "monthly"):
        raise InvalidParameter(
            "granularity must be daily or monthly.",
            param="granularity",
            value=granularity,
            allowed_values=["daily", "monthly"],
        )
    return start_d, end_d


@dataclass(slots=True)
class Bucket:
    cost_micros: int = 0
    requests: int = 0
    tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(slots=True)
class StatsNumbers:
    total_micros: int
    by_category: dict[str, int]
    buckets: list[tuple[str, Bucket]]
    month_spent_micros: int
    monthly_budget_micros: int | None


def bucket_rows(
    rows: Sequence[DailyRow], start: date, end: date, granularity: str
) -> tuple[dict[str, int], list[tuple[str, Bucket]]]:
    """Category totals and one bucket per day (or month) of the window, empty ones included."""
    by_category = dict.fromkeys(CATEGORIES, 0)
    buckets: dict[str, Bucket] = {}
    day = start
    while day <= end:
        buckets.setdefault(day.isoformat() if granularity == "daily" else day.isoformat()[:7], Bucket())
        day += timedelta(days=1)
    for row in rows:
        by_category[row.category] = by_category.get(row.category, 0) + row.cost_micros
        bucket = buckets[row.day.isoformat() if granularity == "daily" else row.day.isoformat()[:7]]
        bucket.cost_micros += row.cost_micros
        bucket.requests += row.requests
        bucket.tokens += row.tokens
        bucket.cached_tokens += row.cached_tokens
        bucket.cache_write_tokens += row.cache_write_tokens
        bucket.reasoning_tokens += row.reasoning_tokens
    return by_category, list(buckets.items())


async def cost_stats(
    session: AsyncSession, org_id: str, start: date, end: date, granularity: str, now: datetime
) -> StatsNumbers:
    rows = await repository.daily_costs(session, org_id, start, end)
    by_category, buckets = bucket_rows(rows, start, end, granularity)
    month = month_key(now)
    spent = await repository.spent_in(session, org_id, [month])
    budget = next(
        (
            b
            for b in await repository.budgets_of(session, [org_id])
            if b.key_id == ORG_SCOPE and b.period == "monthly"
        ),
        None,
    )
    return StatsNumbers(
        total_micros=sum(by_category.values()),
        by_category=by_category,
        buckets=buckets,
        month_spent_micros=spent.get((ORG_SCOPE, month), 0),
        monthly_budget_micros=None if budget is None else budget.limit_micros,
    )
