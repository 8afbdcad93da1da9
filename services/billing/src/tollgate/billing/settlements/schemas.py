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

    @classmethod
    def from_event(cls, event: events_pb2.UsageRecorded) -> UsageCharge:
        if not event.event_id or not event.org_id:
            raise InvalidUsageEvent("event_id and org_id are required")
        if event.cost_micros < 0:
            raise InvalidUsageEvent(f"negative cost_micros {event.cost_micros}")
        # PostgreSQL text cannot hold NUL: such an event would fail its batch forever.
        if any("\x00" in s for s in (event.event_id, event.org_id, event.hold_id, event.model, event.status)):
            raise InvalidUsageEvent("NUL character in a text field")
        return cls(
            event_id=event.event_id,
            org_id=event.org_id,
            key_id=event.key_id or None,
            hold_id=event.hold_id or None,
            model=event.model or None,
            cost_micros=event.cost_micros,
            status=event.status or "ok",
        )
