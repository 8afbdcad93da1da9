"""/cost/budget (set, read, remove budgets), /cost/low-balance and /cost/stats (SloughGPT), in
SloughGPT's envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.budgets import low_balance_service, service
from tollgate.billing.budgets.low_balance_service import LowBalanceView
from tollgate.billing.budgets.repository import BudgetRow
from tollgate.billing.budgets.rules import percentage_used
from tollgate.billing.budgets.schemas import (
    BudgetDeleted,
    BudgetList,
    BudgetOut,
    BudgetSet,
    BudgetStatus,
    CostBreakdown,
    CostStats,
    DailyStat,
    LowBalanceDeleted,
    LowBalanceOut,
    LowBalanceSet,
)
from tollgate.billing.deps import current_principal, get_holds, get_sessions
from tollgate.billing.holds.service import HoldService
from tollgate.common.auth_client import Principal
from tollgate.common.money import micros_to_credits

log = logging.getLogger(__name__)
router = APIRouter()


def get_clock() -> Callable[[], datetime]:
    return lambda: datetime.now(UTC)


def _out(b: BudgetRow, current_period: str, spent: int) -> BudgetOut:
    remaining = max(b.limit_micros - spent, 0)
    return BudgetOut(
        id=b.id,
        org_id=b.org_id,
        key_id=b.key_id or None,
        period="daily" if b.period == "daily" else "monthly",
        monthly_budget=micros_to_credits(b.limit_micros),
        limit_micros=b.limit_micros,
        alert_threshold=None if b.alert_threshold_pct is None else b.alert_threshold_pct / 100,
        alert_emails=list(b.alert_emails),
        hard_limit=b.hard_limit,
        current_period=current_period,
        spent=micros_to_credits(spent),
        spent_micros=spent,
        remaining=micros_to_credits(remaining),
        remaining_micros=remaining,
        percentage_used=percentage_used(spent, b.limit_micros),
    )


def _low_balance_out(v: LowBalanceView) -> LowBalanceOut:
    threshold = None if v.setting is None else v.setting.threshold_micros
    return LowBalanceOut(
        org_id=v.org_id,
        low_balance_threshold=None if threshold is None else micros_to_credits(threshold),
        low_balance_threshold_micros=threshold,
        alert_emails=[] if v.setting is None else list(v.setting.effective_emails),
        alert_emails_from_budget=v.setting is not None and v.setting.alert_emails is None,
        balance=micros_to_credits(v.balance_micros),
        balance_micros=v.balance_micros,
        below_threshold=v.below_threshold,
    )


async def _refresh_cache(holds: HoldService, org_id: str) -> None:
    try:
        await holds.refresh_limits(org_id)
    except RedisError:
        # Committed already: the cached limits expire and reload from PostgreSQL.
        log.warning("budget cache refresh failed; it reloads on expiry", extra={"org_id": org_id})


@router.post("/cost/budget", response_model=BudgetOut | BudgetDeleted)
async def set_budget(
    body: BudgetSet,
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    holds: HoldService = Depends(get_holds),
    clock: Callable[[], datetime] = Depends(get_clock),
) -> BudgetOut | BudgetDeleted:
    org_id = service.target_org(principal, body.org_id, write=True)
    now = clock()
    async with sessions.begin() as session:
        row, existed = await service.set_budget(session, org_id, body, now)
        views = await service.budgets_with_spend(session, org_id, now) if row else []
    await _refresh_cache(holds, org_id)
    log.info("budget set", extra={"org_id": org_id, "key_id": body.key_id, "period": body.period})
    if row is None:
        return BudgetDeleted(org_id=org_id, key_id=body.key_id, period=body.period, deleted=existed)
    view = next(v for v in views if v.budget.id == row.id)
    return _out(view.budget, view.current_period, view.spent_micros)


@router.get("/cost/budget", response_model=BudgetList)
async def list_budgets(
    org_id: str | None = Query(default=None, min_length=1, max_length=200),
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    clock: Callable[[], datetime] = Depends(get_clock),
) -> BudgetList:
    target = service.target_org(principal, org_id, write=False)
    async with sessions.begin() as session:
        views = await service.budgets_with_spend(session, target, clock())
        low = await low_balance_service.view(session, target)
    return BudgetList(
        org_id=target,
        data=[_out(v.budget, v.current_period, v.spent_micros) for v in views],
        low_balance=None if low.setting is None else _low_balance_out(low),
    )


@router.post("/cost/low-balance", response_model=LowBalanceOut | LowBalanceDeleted)
async def set_low_balance(
    body: LowBalanceSet,
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> LowBalanceOut | LowBalanceDeleted:
    """Sets (or with a null threshold removes) the org's low-balance alert; a threshold above the
    current balance alerts at once."""
    org_id = service.target_org(principal, body.org_id, write=True)
    async with sessions.begin() as session:
        existed, fired = await low_balance_service.set_low_balance(session, org_id, body)
        low = await low_balance_service.view(session, org_id)
    log.info(
        "low balance setting changed",
        extra={"org_id": org_id, "removed": body.low_balance_threshold is None, "alerts_fired": len(fired)},
    )
    if body.low_balance_threshold is None:
        return LowBalanceDeleted(org_id=org_id, deleted=existed)
    return _low_balance_out(low)


@router.get("/cost/low-balance", response_model=LowBalanceOut)
async def get_low_balance(
    org_id: str | None = Query(default=None, min_length=1, max_length=200),
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> LowBalanceOut:
    target = service.target_org(principal, org_id, write=False)
    async with sessions.begin() as session:
        low = await low_balance_service.view(session, target)
    return _low_balance_out(low)


@router.delete("/cost/budget", response_model=BudgetDeleted)
async def delete_budget(
    key_id: int | None = Query(default=None, gt=0, le=2**63 - 1),
    period: Literal["daily", "monthly"] = Query(default="monthly"),
    org_id: str | None = Query(default=None, min_length=1, max_length=200),
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    holds: HoldService = Depends(get_holds),
) -> BudgetDeleted:
    target = service.target_org(principal, org_id, write=True)
    async with sessions.begin() as session:
        deleted = await service.delete_budget(session, target, key_id, period)
    await _refresh_cache(holds, target)
    return BudgetDeleted(org_id=target, key_id=key_id, period=period, deleted=deleted)


@router.get("/cost/stats", response_model=CostStats)
async def cost_stats(
    start_date: str | None = Query(default=None, max_length=32),
    end_date: str | None = Query(default=None, max_length=32),
    granularity: str = Query(default="daily", max_length=32),
    org_id: str | None = Query(default=None, min_length=1, max_length=200),
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    clock: Callable[[], datetime] = Depends(get_clock),
) -> CostStats:
    target = service.target_org(principal, org_id, write=False)
    now = clock()
    start, end = service.stats_window(start_date, end_date, granularity, now)
    async with sessions.begin() as session:
        numbers = await service.cost_stats(session, target, start, end, granularity, now)
    budget = numbers.monthly_budget_micros
    spent = numbers.month_spent_micros
    return CostStats(
        org_id=target,
        start_date=start.isoformat(),
        end_date=end.isoformat(),
        granularity="monthly" if granularity == "monthly" else "daily",
        total_cost=micros_to_credits(numbers.total_micros),
        total_cost_micros=numbers.total_micros,
        breakdown=CostBreakdown(**{k: micros_to_credits(v) for k, v in numbers.by_category.items()}),
        breakdown_micros=numbers.by_category,
        daily_stats=[
            DailyStat(
                date=label,
                cost=micros_to_credits(b.cost_micros),
                cost_micros=b.cost_micros,
                requests=b.requests,
                tokens=b.tokens,
                cached_tokens=b.cached_tokens,
                cache_write_tokens=b.cache_write_tokens,
                reasoning_tokens=b.reasoning_tokens,
            )
            for label, b in numbers.buckets
        ],
        budget_status=BudgetStatus(
            monthly_budget=None if budget is None else micros_to_credits(budget),
            spent=micros_to_credits(spent),
            spent_micros=spent,
            remaining=None if budget is None else micros_to_credits(budget - spent),
            percentage_used=None if budget is None else percentage_used(spent, budget),
        ),
    )
