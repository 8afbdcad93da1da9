"""Usage report shapes (SloughGPT's `GET /analytics/usage`) and the value objects the consumer stores."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from pydantic import BaseModel


class GroupBy(enum.StrEnum):
    MODEL = "model"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: dt.date
    end: dt.date  # inclusive
    group_by: GroupBy


@dataclass(frozen=True, slots=True)
class UsageFact:
    """One decoded `UsageRecorded` event (plain dataclass: the consumer builds hundreds per batch)."""

    event_id: str
    org_id: str
    key_id: int
    user_id: str
    model: str
    provider: str
    tokens_in: int
    tokens_out: int
    cost_micros: int
    latency_ms: int
    status: str
    stream: bool
    created_at: dt.datetime
    tokens_cached_in: int = 0
    tokens_cache_write: int = 0
    tokens_reasoning: int = 0


@dataclass(frozen=True, slots=True)
class DailyDelta:
    """What a batch of new facts adds to one `usage_daily` row."""

    day: dt.date
    org_id: str
    model: str
    requests: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost_micros: int
    latency_ms_sum: int
    tokens_cached_in: int = 0
    tokens_cache_write: int = 0
    tokens_reasoning: int = 0


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Summed rollup rows for one breakdown key (a model id or an ISO date); integers only."""

    key: str
    requests: int
    errors: int
    tokens: int
    cost_micros: int
    latency_ms_sum: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class StoreResult:
    inserted: int
    duplicates: int


class ModelBreakdown(BaseModel):
    model_id: str
    requests: int
    tokens: int
    # of `tokens`: read from / written to the provider's prompt cache, and reasoning tokens
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    avg_response_time: float
    cost: float


class DayBreakdown(BaseModel):
    date: str
    requests: int
    tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    avg_response_time: float
    cost: float


class UsageReport(BaseModel):
    total_requests: int
    total_tokens: int
    total_cached_tokens: int = 0
    total_cache_write_tokens: int = 0
    total_reasoning_tokens: int = 0
    average_response_time_ms: float
    success_rate: float
    breakdown: list[ModelBreakdown] | list[DayBreakdown]
