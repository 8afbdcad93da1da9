"""Request and response bodies of /cost/budget and /cost/stats (SloughGPT's shapes, plus exact
*_micros fields next to every amount: the floats are for display, the integers are the money)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field


class BudgetSet(BaseModel):
    # The limit per period in credits (SloughGPT's name, also for daily budgets); null removes it.
    monthly_budget: Decimal | None
    alert_threshold: Decimal | None = None  # a fraction of the budget, 0 < x <= 1 (seed: 0.8)
    alert_emails: list[str] = Field(default_factory=list, max_length=20)
    key_id: int | None = Field(default=None, gt=0, le=2**63 - 1)  # a key's budget; none: the org's
    period: Literal["daily", "monthly"] = "monthly"
    org_id: str | None = Field(default=None, min_length=1, max_length=200)  # platform admins only
    hard_limit: bool = True  # refuse requests that would exceed it (false: alerts only)


class BudgetOut(BaseModel):
    object: Literal["budget"] = "budget"
    id: str
    org_id: str
    key_id: int | None
    period: Literal["daily", "monthly"]
    monthly_budget: float
    limit_micros: int
    alert_threshold: float | None
    alert_emails: list[str]
    hard_limit: bool
    current_period: str
    spent: float
    spent_micros: int
    remaining: float
    remaining_micros: int
    percentage_used: float


class LowBalanceSet(BaseModel):
    # Credits; alert when the wallet goes from >= this to below it. null removes the setting.
    low_balance_threshold: Decimal | None
    # Omitted or null: the addresses of the organisation's monthly budget (as they are when it fires).
    alert_emails: list[str] | None = Field(default=None, max_length=20)
    org_id: str | None = Field(default=None, min_length=1, max_length=200)  # platform admins only


class LowBalanceOut(BaseModel):
    object: Literal["low_balance"] = "low_balance"
    org_id: str
    low_balance_threshold: float | None  # null: no low-balance alert is set
    low_balance_threshold_micros: int | None
    alert_emails: list[str]  # where an alert would go now
    alert_emails_from_budget: bool  # true: inherited from the org's monthly budget
    balance: float
    balance_micros: int
    below_threshold: bool


class LowBalanceDeleted(BaseModel):
    object: Literal["low_balance.deleted"] = "low_balance.deleted"
    org_id: str
    deleted: bool


class BudgetList(BaseModel):
    object: Literal["list"] = "list"
    org_id: str
    data: list[BudgetOut]
    low_balance: LowBalanceOut | None = None  # the org's low-balance alert, if one is set


class BudgetDeleted(BaseModel):
    object: Literal["budget.deleted"] = "budget.deleted"
    org_id: str
    key_id: int | None
    period: Literal["daily", "monthly"]
    deleted: bool


class CostBreakdown(BaseModel):
    inference: float
    training: float
    storage: float
    network: float


class DailyStat(BaseModel):
    date: str  # "2026-11-23" (daily) or "2026-11" (monthly granularity)
    cost: float
    cost_micros: int
    requests: int
    tokens: int
    # of `tokens`: prompt tokens read from / written to the provider's cache, and reasoning tokens
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


class BudgetStatus(BaseModel):
    monthly_budget: float | None
    spent: float
    spent_micros: int
    remaining: float | None
    percentage_used: float | None


class CostStats(BaseModel):
    org_id: str
    start_date: str
    end_date: str
    granularity: Literal["daily", "monthly"]
    total_cost: float
    total_cost_micros: int
    breakdown: CostBreakdown
    breakdown_micros: dict[str, int]
    daily_stats: list[DailyStat]
    budget_status: BudgetStatus
