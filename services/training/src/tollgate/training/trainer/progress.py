"""Writes a job's progress to the database off the training thread.

Recording a step used to be a synchronous transaction between two steps (lock the job row, update
it, insert an event and an outbox record, commit): the training thread waited for the database, the
commit's flush and a connection check. It now hands each step to one writer thread and goes on
training. The writer writes everything in the order it was handed over: the steps waiting (in one
transaction, at most one every `min_interval_s`, so short GPU steps do not turn into one commit
each), then each other write (a checkpoint row, an epoch's metrics) after the steps before it.
Every step still gets its own event and its own TrainingProgress record.

What a write learns comes back at the training thread's next step: the job was cancelled (the loop
stops), or it is no longer this attempt's (NotOurs) or a write failed (both raised there, as the
synchronous write raised them). A cancel is still seen within seconds: the worker's lease renewal
(every second) sends SIGTERM, which stops the loop at the end of the step in progress."""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

from tollgate.training.trainer.loop import StepReport
from tollgate.training.trainer.store import RecordedStep

log = logging.getLogger(__name__)


class StepStore(Protocol):
    def steps(self, recorded: Sequence[RecordedStep]) -> bool:
        """Writes the steps in one transaction; False when the job is no longer running."""
        ...


class _Flush:
    """Queue marker: the batching deadline passed."""


_FLUSH = _Flush()
_CLOSE = None


class ProgressWriter:
    def __init__(self, store: StepStore, min_interval_s: float = 1.0) -> None:
        self._store = store
        self._min_interval_s = min_interval_s
        self._queue: queue.Queue[RecordedStep | Callable[[], None] | None] = queue.Queue()
        self._cancelled = False
        self._failure: BaseException | None = None
        self._closed = False
        # the creator's context (its "training job" span): the Kafka records written on this thread
        # carry the same trace context as when the training thread wrote them itself
        context = contextvars.copy_context()
        self._thread = threading.Thread(
            target=context.run, args=(self._run,), name="training-progress-writer", daemon=True
        )
        self._thread.start()

    # -- the training thread's side: never waits for the database --------------------------------

    def step(self, report: StepReport) -> None:
        self._queue.put(RecordedStep.now(report))

    def call(self, write: Callable[[], None]) -> None:
        """Runs `write` on the writer thread, after every step handed over before it."""
        self._queue.put(write)

    def running(self) -> bool:
        """False once a write found the job no longer running; raises what a write raised."""
        self.raise_failure()
        return not self._cancelled

    def raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def close(self) -> None:
        """Waits until everything handed over is written (or dropped after a failure)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_CLOSE)
        self._thread.join()

    # -- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        steps: list[RecordedStep] = []
        flushed_at = float("-inf")
        while True:
            item = self._next(steps, flushed_at)
            if isinstance(item, RecordedStep):
                steps.append(item)
                continue
            if steps:  # the deadline passed, or a write or the end must come after these steps
                self._guarded(partial(self._write_steps, steps))
                steps = []
                flushed_at = time.monotonic()
            if item is _CLOSE:
                return
            if not isinstance(item, _Flush):
                self._guarded(item)

    def _next(
        self, steps: list[RecordedStep], flushed_at: float
    ) -> RecordedStep | Callable[[], None] | _Flush | None:
        if not steps:
            return self._queue.get()
        wait = flushed_at + self._min_interval_s - time.monotonic()
        try:
            # past the deadline: take only what is already queued, then write
            return self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
        except queue.Empty:
            return _FLUSH

    def _write_steps(self, batch: list[RecordedStep]) -> None:
        if not self._cancelled and not self._store.steps(batch):
            self._cancelled = True

    def _guarded(self, write: Callable[[], None]) -> None:
        if self._failure is not None:
            return  # after NotOurs (or any failure) nothing more is written
        try:
            write()
        except BaseException as exc:
            log.warning("progress write failed", exc_info=True)
            self._failure = exc
