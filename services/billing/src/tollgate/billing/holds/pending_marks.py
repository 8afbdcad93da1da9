"""The gateway's hold marks, gathered in memory and written to Redis in batches.

Why not one Redis call per mark: at one mark per answered request, a Lua call each cost billing
about 0.25 ms of CPU per request (redis-py's client side, measured), more than everything else it
does for a request. Gathered for `flush_interval_s`, an org's marks cost one call per batch.

What still holds (docs/billing.md, "Holds at answer time"):
- the balance a request sees is the one after every mark billing has received: a Reserve that would
  be refused, and every GetBalance, first writes the org's pending marks (and waits for a batch of
  them already being written), then asks again;
- a mark is in Redis within `flush_interval_s` of its arrival, so the sweeper finds it there;
- billing killed before a flush loses those marks, not their money: the gateway that sent them is
  alive and its usage events settle the requests (a mark only matters when the gateway died).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from tollgate.billing.holds.store import HoldStore, MarkRecord
from tollgate.billing.metrics import BillingMetrics

log = logging.getLogger(__name__)


class PendingMarks:
    def __init__(
        self,
        store: HoldStore,
        metrics: BillingMetrics,
        *,
        grace_s: float,
        flush_interval_s: float = 0.02,
        max_pending: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """A marked hold not settled `grace_s` after its mark is published by the sweeper. While
        Redis is away marks wait, up to `max_pending`; beyond that they are dropped (counted)."""
        self._store = store
        self._metrics = metrics
        self._grace = grace_s
        self._interval = flush_interval_s
        self._max_pending = max_pending
        self._count = 0  # marks pending
        self._clock = clock
        self._pending: dict[str, list[MarkRecord]] = {}
        self._writing: dict[str, asyncio.Future[None]] = {}  # orgs whose batch is being written

    def add(self, marks: Sequence[MarkRecord]) -> None:
        room = self._max_pending - self._count
        if len(marks) > room:
            self._metrics.marks_dropped.inc(len(marks) - max(room, 0))
            marks = marks[: max(room, 0)]
        for mark in marks:
            self._pending.setdefault(mark.org_id, []).append(mark)
        self._count += len(marks)

    def waiting(self, org_id: str) -> bool:
        """Whether the org has marks not yet in Redis (pending, or being written)."""
        return org_id in self._pending or org_id in self._writing

    async def write_org(self, org_id: str) -> None:
        """Puts the org's marks in Redis now: the ones being written, then the pending ones."""
        writing = self._writing.get(org_id)
        if writing is not None:
            await asyncio.shield(writing)
        if org_id in self._pending:
            marks = self._pending.pop(org_id)
            self._count -= len(marks)
            await self._write({org_id: marks})

    async def write_all(self) -> int:
        if not self._pending:
            return 0
        batch, self._pending, self._count = self._pending, {}, 0
        return await self._write(batch)

    async def _write(self, batch: dict[str, list[MarkRecord]]) -> int:
        done = asyncio.get_running_loop().create_future()
        for org_id in batch:
            self._writing[org_id] = done
        records = [m for marks in batch.values() for m in marks]
        try:
            marked = await self._store.mark(records, self._clock() + self._grace)
        except Exception:
            # Redis is away: keep them for the next flush (their usage events still carry the money)
            for org_id, marks in batch.items():
                self._pending.setdefault(org_id, [])[:0] = marks
                self._count += len(marks)
            raise
        finally:
            for org_id in batch:
                if self._writing.get(org_id) is done:
                    del self._writing[org_id]
            done.set_result(None)
        self._metrics.holds_marked.inc(marked)
        if marked < len(records):
            self._metrics.marks_late.inc(len(records) - marked)
        return marked

    async def run(self) -> None:
        """Writes what gathered, every flush interval."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.write_all()
            except Exception:
                log.warning("writing hold marks failed; retrying", exc_info=True)
                await asyncio.sleep(min(self._interval * 50, 1.0))

    async def close(self) -> None:
        try:
            await self.write_all()
        except Exception:
            log.warning("hold marks not written at shutdown (their usage events settle them)", exc_info=True)
