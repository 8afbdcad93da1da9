"""Keeps the partitioned usage tables (migration 0003): pg_partman makes the coming days' partitions
and drops the ones past their retention. Runs inside the service, at start and then periodically, so
no pg_partman background worker (a server setting) is needed. Several replicas may run it at once:
`run_maintenance` takes an advisory lock and a replica that does not get it does nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.metrics import AnalyticsMetrics
from tollgate.common import partman

log = logging.getLogger(__name__)

USAGE_EVENTS = "public.usage_events"
USAGE_HOURLY = "public.usage_hourly"
USAGE_KEY_HOURLY = "public.usage_key_hourly"  # migration 0005: kept as long as usage_hourly

# A fact for a day with no partition (a late one, on a database migrated a few days ago) went to the
# default partition: move such rows into their day's partition, created for them, so retention
# drops them with it. Cheap when the default partition is empty (one min() on it).
_MOVE_DEFAULT = text(
    "SELECT partman.partition_data_time(p_parent_table => :parent, p_batch_count => 100, p_analyze => false)"
)


@dataclass(frozen=True, slots=True)
class Retention:
    """Days kept: raw facts (one partition a day) and the hourly rollup (one partition a month)."""

    facts_days: int
    hourly_days: int


class PartitionMaintenance:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        retention: Retention,
        metrics: AnalyticsMetrics,
        *,
        interval_s: float,
    ) -> None:
        self._sessions = sessions
        self._retention = retention
        self._metrics = metrics
        self._interval_s = interval_s

    async def run_once(self) -> None:
        """Applies the retention settings, moves stray rows out of the default partitions, then
        creates and drops partitions of both tables."""
        for parent, days in (
            (USAGE_EVENTS, self._retention.facts_days),
            (USAGE_HOURLY, self._retention.hourly_days),
            (USAGE_KEY_HOURLY, self._retention.hourly_days),
        ):
            # a transaction per table: partition_data_time keeps the rows it moves in a temp table
            # shaped like the first table it moved in a transaction (dropped at commit), so a
            # second table's rows in the same transaction failed to fit it
            async with self._sessions() as session, session.begin():
                await partman.utc_days(session)
                await session.execute(_MOVE_DEFAULT, {"parent": parent})
                await partman.maintain(session, parent, days)
        async with self._sessions() as session:
            count = await partman.partition_count(session, USAGE_EVENTS)
        self._metrics.fact_partitions.set(count)
        self._metrics.partition_maintenance.labels("ok").inc()
        self._metrics.partition_maintenance_last_success.set(time.time())

    async def run(self) -> None:
        """Background task: at start, then every interval; a failure is logged and retried next time."""
        while True:
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError) as exc:
                self._metrics.partition_maintenance.labels("failed").inc()
                log.warning("usage partition maintenance failed", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval_s)
