"""What callers hand to `record_alerts`, and the pydantic shapes of the alert and webhook routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field

ALERT_KINDS = ("budget_threshold", "quota_threshold", "low_balance")
CHANNELS = ("kafka", "email", "webhook")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True, slots=True)
class AlertFact:
    """A threshold crossed, as the settlement that crossed it saw it."""

    org_id: str
    key_id: int | None
    kind: str  # "budget_threshold" | "quota_threshold" | "low_balance"
    budget_id: str
    period: str  # "2026-11" (monthly) or "2026-11-23" (daily)
    threshold_pct: int
    spent_micros: int
    limit_micros: int
    balance_micros: int
    emails: tuple[str, ...] = ()

    @property
    def alert_id(self) -> str:
        """The natural key: one alert per (budget or key or org, period, threshold) and kind."""
        return (
            f"{self.kind}:{self.budget_id or self.key_id or self.org_id}:{self.period}:{self.threshold_pct}"
        )


class WebhookCreate(BaseModel):
    url: str = Field(min_length=1, max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    # Platform admin keys name the organisation; org owners/admins manage their own.
    org_id: str | None = Field(default=None, min_length=1, max_length=200)


class WebhookOut(BaseModel):
    id: str
    org_id: str
    url: str
    description: str | None
    secret_hint: str
    active: bool
    created_at: datetime


class WebhookCreated(WebhookOut):
    # The signing secret, shown once; only its encrypted form is stored.
    secret: str


class WebhookList(BaseModel):
    data: list[WebhookOut]


class AttemptOut(BaseModel):
    attempt: int
    outcome: str  # "sending" | "delivered" | "retry" | "failed" | "abandoned"
    status_code: int | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class DeliveryOut(BaseModel):
    id: int
    channel: str
    target: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_status_code: int | None
    delivered_at: datetime | None
    attempt_log: list[AttemptOut]


class AlertOut(BaseModel):
    id: int  # pass as before_id to page back
    alert_id: str
    org_id: str
    key_id: int | None
    kind: str
    budget_id: str
    period: str
    threshold_pct: int
    spent: float
    spent_micros: int
    limit: float
    limit_micros: int
    balance_micros: int
    fired_at: datetime
    deliveries: list[DeliveryOut]


class AlertList(BaseModel):
    data: list[AlertOut]
    has_more: bool
