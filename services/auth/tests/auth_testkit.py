"""Fakes for auth's collaborators (never for the code under test)."""

from __future__ import annotations

from collections.abc import Sequence

from tollgate.auth.keys.events import KeyChange


class RecordingEvents:
    """Stands in for the Kafka publisher: remembers what would have gone to auth.keys.v1."""

    def __init__(self) -> None:
        self.published: list[KeyChange] = []

    async def publish(self, changes: Sequence[KeyChange]) -> None:
        self.published.extend(changes)
