"""What happens to a request's usage once it is known: a charged request's hold is marked before its
answer leaves (usage/marks.py), then its event is queued for Kafka (usage/emitter.py)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from tollgate.gateway.usage.events import OutgoingEvent


class Emitter(Protocol):
    def emit(self, event: OutgoingEvent) -> None: ...


class Marker(Protocol):
    def mark(self, event: OutgoingEvent) -> Awaitable[None] | None: ...


class UsageRecorder:
    def __init__(self, emitter: Emitter, marker: Marker | None = None) -> None:
        self._emitter = emitter
        self._marker = marker

    def answered(self, event: OutgoingEvent) -> Awaitable[None] | None:
        """A charged request (answered in full, or a stream cut short): marks its hold and queues its
        event. Await the result (when there is one) before the answer's last bytes leave: it returns
        once the mark is out of this process. Not awaiting it is harmless (the mark still goes)."""
        started = self._marker.mark(event) if self._marker is not None and event.hold_id else None
        self._emitter.emit(event)
        return started

    def emit(self, event: OutgoingEvent) -> None:
        """A request that charged nothing (its hold was released): only the event."""
        self._emitter.emit(event)
