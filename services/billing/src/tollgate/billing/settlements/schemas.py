"""The settlement view of a usage event, independent of its wire format."""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.contracts.v1 import events_pb2


class InvalidUsageEvent(ValueError):
    """A decoded event that cannot be settled (no id or org, negative cost)."""


@dataclass(frozen=True, slots=True)
class UsageCharge:
    event_id: str
    org_id: str
    key_id: int | None
    hold_id: str | None
    model: str | None
    cost_micros: int
    status: str
    # For budgets and /cost/stats (defaults keep the positional form of older callers working).
    tokens_in: int = 0
    tokens_out: int = 0
    occurred_at_ms: int = 0  # when the request finished (else started); 0 when the event has neither
    operation: str = "chat"
    # token classes inside tokens_in / tokens_out (docs/billing.md "Token classes")
    tokens_cached_in: int = 0
    tokens_cache_write: int = 0
    tokens_reasoning: int = 0

    @classmethod
    def from_event(cls, event: events_pb2.UsageRecorded) -> UsageCharge:
        if not event.event_id or not event.org_id:
            raise InvalidUsageEvent("event_id and org_id are required")
        if event.cost_micros < 0:
            raise InvalidUsageEvent(f"negative cost_micros {event.cost_micros}")
        classes = (event.tokens_cached_in, event.tokens_cache_write, event.tokens_reasoning)
        if event.tokens_in < 0 or event.tokens_out < 0 or min(classes) < 0:
            raise InvalidUsageEvent("negative token counts")
        # PostgreSQL text cannot hold NUL: such an event would fail its batch forever.
        fields = (event.event_id, event.org_id, event.hold_id, event.model, event.status, event.operation)
        if any("\x00" in s for s in fields):
            raise InvalidUsageEvent("NUL character in a text field")
        return cls(
            event_id=event.event_id,
            org_id=event.org_id,
            key_id=event.key_id or None,
            hold_id=event.hold_id or None,
            model=event.model or None,
            cost_micros=event.cost_micros,
            status=event.status or "ok",
            tokens_in=event.tokens_in,
            tokens_out=event.tokens_out,
            occurred_at_ms=_moment_ms(event.finished_at_unix_ms or event.started_at_unix_ms),
            operation=event.operation or "chat",
            tokens_cached_in=event.tokens_cached_in,
            tokens_cache_write=event.tokens_cache_write,
            tokens_reasoning=event.tokens_reasoning,
        )


_MAX_MOMENT_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z, the last moment a datetime can hold


def _moment_ms(value: int) -> int:
    """A usable timestamp or 0 (unknown): a nonsense clock must not make a batch unsettleable."""
    return value if 0 < value < _MAX_MOMENT_MS else 0
