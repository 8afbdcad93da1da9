"""Deletes the kept first reports of idempotent log-usage calls (`guard_usage_reports`) once older
than `AUTH_GUARD_REPORT_RETENTION_DAYS`. A retry after that is a new event with a new time. The
retention must outlast billing's settlement rows (BILLING_SETTLEMENT_RETENTION_DAYS, 35, dropped by
whole UTC days): while billing still holds an event's row, a retry must carry the first time to
meet it (docs/identity.md, "Idempotency")."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

_EXPIRE = text(
    "DELETE FROM guard_usage_reports WHERE event_id = ANY(ARRAY("
    "SELECT event_id FROM guard_usage_reports"
    " WHERE created_at < now() - CAST(:days AS integer) * interval '1 day'"
    " ORDER BY created_at LIMIT :batch))"
)


class GuardReportRetention:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        registry: CollectorRegistry,
        *,
        retention_days: int,
        interval_s: float = 3600.0,
        batch: int = 50_000,
    ) -> None:
        self._sessions = sessions
        self._days = retention_days
        self._interval = interval_s
        self._batch = batch
        self._expired = Counter(
            "auth_guard_usage_reports_expired_total",
            "Kept first reports of idempotent guard log-usage calls deleted past their retention",
            registry=registry,
        )
        self._failures = Counter(
            "auth_guard_usage_report_retention_failures_total",
            "Runs of the guard usage report retention that failed (retried next interval)",
            registry=registry,
        )

    async def run_once(self) -> int:
        """Deletes expired reports, a batch per transaction; returns how many."""
        total = 0
        while True:
            params = {"days": self._days, "batch": self._batch}
            async with self._sessions.begin() as session:
                deleted = int((await session.execute(_EXPIRE, params)).rowcount or 0)
            total += deleted
            self._expired.inc(deleted)
            if deleted < self._batch:
                return total

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError) as exc:
                self._failures.inc()
                log.warning("guard usage report retention failed", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval)
