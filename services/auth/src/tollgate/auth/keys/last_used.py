"""last_used_at without a write per Authenticate: stamps are kept in memory and flushed in batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.auth.keys.repository import KeyRepository

log = logging.getLogger(__name__)


class LastUsedRecorder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval_s: float) -> None:
        self._sessions = sessions
        self._interval = interval_s
        self._pending: dict[int, datetime] = {}  # bounded by the number of keys, not by traffic

    def touch(self, key_id: int, at: datetime) -> None:
        current = self._pending.get(key_id)
        if current is None or at > current:
            self._pending[key_id] = at

    def pending(self) -> Mapping[int, datetime]:
        return dict(self._pending)

    async def flush(self) -> int:
        """Writes what is pending; on a database error puts it back for the next flush."""
        if not self._pending:
            return 0
        stamps, self._pending = self._pending, {}
        try:
            async with self._sessions.begin() as session:
                await KeyRepository(session).mark_used(stamps)
        except SQLAlchemyError as exc:
            for key_id, at in stamps.items():
                self.touch(key_id, at)
            log.warning("last_used_at flush failed", extra={"keys": len(stamps), "error": str(exc)})
            return 0
        return len(stamps)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()
