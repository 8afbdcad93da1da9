"""Usage report shapes (SloughGPT's `GET /analytics/usage`) and the value objects the consumer stores."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from pydantic import BaseModel

# A disconnecting client was still served (and billed); only failures on our side count as errors.
SUCCESS_STATUSES = frozenset({"ok", "client_disconnected"})


class GroupBy(enum.StrEnum):
    MODEL = "model"
    DAY = "day"
    HOUR = "hour"  # ours, beside the seed's two: read from the hourly rollup


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Optional filters of a usage or latency report; set ones are read from `usage_key_hourly`."""

    key_id: int | None = None
    operation: str | None = None
    model: str | None = None

    @property
    def any(self) -> bool:
        return self.key_id is not None or self.operation is not None or self.model is not None


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: dt.date
    end: dt.date  # inclusive
    group_by: GroupBy
    filters: UsageFilter = UsageFilter()


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
    operation: str = "chat"
    endpoint: str = ""


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
class HourlyDelta:
    """What a batch of new facts adds to one `usage_hourly` row (`hour`: the UTC hour it starts)."""

    hour: dt.datetime
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
class KeyHourlyDelta:
    """What a batch adds to one `usage_key_hourly` row: the sums, and a latency histogram of the
    answered requests (usage.histogram buckets) with their largest latency."""

    hour: dt.datetime
    org_id: str
    key_id: int
    operation: str
    model: str
    requests: int
    errors: int
    tokens_in: int
    tokens_out: int
    cost_micros: int
    latency_ms_sum: int
    tokens_cached_in: int
    tokens_cache_write: int
    tokens_reasoning: int
    latency_buckets: tuple[int, ...]
    latency_ms_max: int


@dataclass(frozen=True, slots=True)
class LatencyDailyDelta:
    """What a batch adds to one `usage_latency_daily` row (answered requests only)."""

    day: dt.date
    org_id: str
    model: str
    latency_buckets: tuple[int, ...]
    latency_ms_max: int


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
    # outside the stored window: older than the retention (a copy could no longer be recognised)
    # or too far ahead of the clock for a partition to exist
    out_of_window: int = 0


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


class HourBreakdown(BaseModel):
    hour: str  # the UTC hour it starts, ISO 8601 ("2026-12-06T13:00:00Z")
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
    breakdown: list[ModelBreakdown] | list[DayBreakdown] | list[HourBreakdown]
