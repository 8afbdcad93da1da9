"""Shapes of `GET /analytics/latency` and `GET /analytics/errors` (ours, beside SloughGPT's usage)."""

from __future__ import annotations

from pydantic import BaseModel


class LatencyStats(BaseModel):
    """Answered requests' latency in milliseconds, estimated from the rollup's fixed buckets (each
    value lies in the bucket of the exact one: at most 25% wide); null when there were none."""

    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: int | None


class LatencyByDay(LatencyStats):
    date: str


class LatencyByHour(LatencyStats):
    hour: str  # the UTC hour it starts, ISO 8601 ("2026-12-06T13:00:00Z")


class LatencyByModel(LatencyStats):
    model_id: str


class LatencyReport(LatencyStats):
    start_date: str
    end_date: str
    breakdown: list[LatencyByDay] | list[LatencyByHour] | list[LatencyByModel]


class ErrorEntry(BaseModel):
    """One failed request: what, when and by which key; never the prompt or the answer."""

    request_id: str
    created_at: str
    model: str
    provider: str
    key_id: int
    operation: str
    endpoint: str
    stream: bool
    status: str  # "upstream_error" | "upstream_timeout"
    message: str
    latency_ms: int


class ErrorPage(BaseModel):
    data: list[ErrorEntry]
    has_more: bool
    next_before: str | None  # pass as `before` for the next (older) page
