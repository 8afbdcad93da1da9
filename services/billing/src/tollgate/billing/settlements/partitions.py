"""Keeps `usage_settlements` (migration 0007): pg_partman makes the coming days' partitions and drops
the days past the retention; rows of the default partition (events without a usable time, rows
migrated from before partitioning) are deleted once settled longer ago than the retention.

A settlement row only has to outlive every copy of its event that can still arrive: Kafka keeps
usage.v1 7 days and a gateway's spool holds an event only while Kafka refuses it, so the retention
(35 days by default, BILLING_SETTLEMENT_RETENTION_DAYS) leaves four weeks of margin
(docs/billing.md, "Exactly-once settlement at scale"). Run by billing's worker, the only writer of
the table, at start and then periodically; several workers may run it at once: `run_maintenance`
takes an advisory lock and one that does not get it does nothing."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.metrics import BillingMetrics
from tollgate.common import partman

log = logging.getLogger(__name__)

PARENT = "public.usage_settlements"
# Default-partition rows deleted per run at most (the rows migrated from an unpartitioned table
# may be many): one run an hour clears 12 million a day without one long transaction.
DEFAULT_DELETE_BATCH = 500_000

_EXPIRE_DEFAULT = text(
    "DELETE FROM usage_settlements_default WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM usage_settlements_default"
    " WHERE created_at < now() - CAST(:days AS integer) * interval '1 day' LIMIT :batch))"
)


class SettlementPartitions:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        metrics: BillingMetrics,
        *,
        retention_days: int,
        interval_s: float,
        default_delete_batch: int = DEFAULT_DELETE_BATCH,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._retention_days = retention_days
        self._interval_s = interval_s
        self._batch = default_delete_batch

    async def run_once(self) -> int:
        """Applies the retention, creates and drops day partitions, expires default-partition rows;
        returns how many of those were deleted."""
        days = self._retention_days
        async with self._sessions() as session, session.begin():
            await partman.utc_days(session)
            await partman.maintain(session, PARENT, days)
            expired = (await session.execute(_EXPIRE_DEFAULT, {"days": days, "batch": self._batch})).rowcount
            count = await partman.partition_count(session, PARENT)
        self._metrics.settlement_partitions.set(count)
        self._metrics.settlement_maintenance.labels("ok").inc()
        self._metrics.settlement_maintenance_last_success.set(time.time())
        return int(expired or 0)

    async def run(self) -> None:
        """Background task: at start, then every interval; a failure is logged and retried next time."""
        while True:
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError) as exc:
                self._metrics.settlement_maintenance.labels("failed").inc()
                log.warning("settlement partition maintenance failed", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval_s)
