"""The training worker's loop: lease jobs up to the concurrency limit, start each on the executor,
renew the leases of those running, stop the cancelled ones within seconds, and settle a job whose
process died without settling it. Jobs whose worker died are taken over by `Leases.next`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from tollgate.common.waits import wait_event
from tollgate.training.domain import CANCELLED
from tollgate.training.metrics import WorkerMetrics
from tollgate.training.notify import NotifyListener, listening
from tollgate.training.worker.executors import Executor, Handle
from tollgate.training.worker.leases import Leases

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Running:
    handle: Handle
    renewed_at: float
    stopping: asyncio.Task[None] | None = field(default=None)


class TrainingWorker:
    def __init__(
        self,
        leases: Leases,
        executor: Executor,
        metrics: WorkerMetrics,
        *,
        max_jobs: int,
        poll_s: float,
        heartbeat_s: float,
        stop_grace_s: float,
        kick_outbox: object = None,
        idle_poll_s: float | None = None,
        listener: NotifyListener | None = None,
    ) -> None:
        """`poll_s` while a job runs here (its exit and lease renewals are polled); `idle_poll_s`
        (default `poll_s`) with none, when `listener` wakes the round for every job created,
        cancelled or changing status (migration 0004's NOTIFY)."""
        self.leases = leases
        self.executor = executor
        self.metrics = metrics
        self.max_jobs = max_jobs
        self.poll_s = poll_s
        self.idle_poll_s = poll_s if idle_poll_s is None else idle_poll_s
        self._listener = listener
        self._wake = asyncio.Event()
        self.heartbeat_s = heartbeat_s
        self.stop_grace_s = stop_grace_s
        self.running: dict[str, Running] = {}
        self._swept_at = 0.0
        self._kick = kick_outbox if callable(kick_outbox) else (lambda: None)

    def kick(self) -> None:
        """Run the next round now (a job changed)."""
        self._wake.set()

    async def run(self) -> None:
        try:
            async with listening(self._listener, self.kick):
                while True:
                    self._wake.clear()  # a change committed during the round wakes the next one at once
                    try:
                        await self.tick()
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("worker round failed; retrying")
                    await wait_event(self._wake, self.poll_s if self.running else self.idle_poll_s)
        finally:
            await self.shutdown()

    async def tick(self) -> None:
        await self._watch()
        await self.leases.validate_pending()
        while len(self.running) < self.max_jobs:
            lease = await self.leases.next()
            if lease is None:
                break
            self.metrics.leased.labels("resumed" if lease.resumed else "new").inc()
            log.info(
                "job leased",
                extra={"job_id": lease.job_id, "attempt": lease.attempt, "resumed": lease.resumed},
            )
            handle = await self.executor.start(lease.job_id, lease.attempt, lease.resources)
            self.running[lease.job_id] = Running(handle, time.monotonic())
        if time.monotonic() - self._swept_at >= self.heartbeat_s:
            self._swept_at = time.monotonic()
            if await self.leases.settle_abandoned_cancels():
                self._kick()
        if len(self.running) < self.max_jobs:
            await self.executor.warm()
        self.metrics.running.set(len(self.running))

    async def _watch(self) -> None:
        now = time.monotonic()
        for job_id, run in list(self.running.items()):
            code = await self.executor.exit_code(run.handle)
            if code is not None:
                del self.running[job_id]
                outcome = await self.leases.ended_without_settling(job_id, run.handle.attempt, code)
                self.metrics.finished.labels(outcome or "settled_by_job").inc()
                log.info("job process ended", extra={"job_id": job_id, "exit_code": code, "outcome": outcome})
                self._kick()
                continue
            if run.stopping is not None or now - run.renewed_at < min(self.heartbeat_s, self.poll_s * 2):
                continue
            status = await self.leases.renew(job_id, run.handle.attempt)
            run.renewed_at = now
            if status is None or status == CANCELLED:
                # cancelled (or no longer ours): the process stops within a step, or is killed
                log.info("stopping job process", extra={"job_id": job_id, "status": status})
                run.stopping = asyncio.create_task(self.executor.stop(run.handle, self.stop_grace_s))

    async def shutdown(self) -> None:
        """SIGTERM: our job processes stop (they settle what they trained if cancelled, else their
        jobs are resumed by the next lease), then the executor's spare goes."""
        for job_id, run in self.running.items():
            with contextlib.suppress(Exception):
                await self.executor.stop(run.handle, self.stop_grace_s)
                await self.leases.hand_back(job_id, run.handle.attempt)
        await self.executor.close()
