"""Hold marks: an answered request's actual cost and usage event, handed to billing as it answers.

Why (docs/billing.md, "Holds at answer time"): billing holds a request's maximum cost until its
usage event settles, 30-125 ms after the answer; a key whose balance is under two maximum costs was
refused its next back-to-back request although it could pay. And a gateway killed right after
answering lost the events still in its Kafka producer's linger buffer: answered, never billed.
A mark fixes both. Billing lowers the hold to the actual cost at once, and keeps the usage event in
the hold; if no event settles it within a grace period, billing's sweeper publishes the kept copy
(same event id, so whichever copy comes first is counted, once).

How: one long-lived client stream (`MarkHolds`) per gateway process, on the channel the Reserve
calls use. A mark is written before the answer leaves the gateway: the caller waits until the gRPC
write carrying it has *completed*, which grpc reports once the message's bytes were handed to the
socket (on loopback or a LAN, in billing's receive queue), so a gateway SIGKILLed after answering
has already given billing its copy. It never waits for billing to answer (a round trip the answer
does not need). Marks made while a write is in flight go out together in the next one, so under
load a message carries many and a write's wait is shared. A write that has not completed within
`max_wait_s` (billing stalled) lets its answers go on, counted as `late`; while billing is
unreachable marks are dropped (counted): the usage event still carries the money.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import grpc
from grpc import aio

from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.usage.events import OutgoingEvent

log = logging.getLogger(__name__)

RECENT_S = 0.25  # a Reserve refused this soon after a mark of its org is asked once more


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class HoldMarker:
    def __init__(
        self,
        channel: aio.Channel,
        metrics: GatewayMetrics,
        *,
        max_wait_s: float = 0.25,
        max_pending: int = 10_000,
        reconnect_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A caller waits at most `max_wait_s` for the write carrying its mark (billing slow or the
        socket full); `max_pending` marks at most wait, the others are dropped."""
        self._stub = billing_pb2_grpc.BillingServiceStub(channel)
        self._metrics = metrics
        self._max_wait = max_wait_s
        self._max_pending = max_pending
        self._reconnect = reconnect_s
        self._clock = clock
        self._call: aio.StreamUnaryCall[billing_pb2.HoldMarks, billing_pb2.MarkHoldsSummary] | None = None
        self._writing: asyncio.Future[None] | None = None  # the write in flight
        self._pending: list[billing_pb2.HoldMark] = []
        self._next: asyncio.Future[None] | None = None  # done once the pending marks' write completed
        self._marked_at: dict[str, float] = {}  # org -> when its last mark was written
        self._closing = False
        self._sent = metrics.hold_marks.labels("sent")
        self._dropped = metrics.hold_marks.labels("dropped")
        self._late = metrics.hold_marks.labels("late")

    @property
    def connected(self) -> bool:
        return self._call is not None

    def mark(self, event: OutgoingEvent) -> Awaitable[None] | None:
        """Queues the mark of a charged request; awaiting the result returns once the write carrying
        it has completed (its bytes left this process), was dropped, or took over `max_wait_s`.
        None when not connected."""
        if self._call is None or self._closing:
            self._dropped.inc()
            return None
        if len(self._pending) >= self._max_pending:
            self._dropped.inc()
            return None
        self._pending.append(
            billing_pb2.HoldMark(
                org_id=event.org_id,
                hold_id=event.hold_id,
                cost_micros=event.cost_micros,
                usage_event=event.value,
                headers=[billing_pb2.KafkaHeader(key=k, value=v) for k, v in event.headers],
            )
        )
        self._marked_at[event.org_id] = self._clock()
        written = self._next
        if written is None:  # the first mark of the next write: one future and one timer for all
            loop = asyncio.get_running_loop()
            written = self._next = loop.create_future()
            loop.call_later(self._max_wait, self._overdue, written)
        if self._writing is None:
            self._write_pending()
        return written

    def marked_recently(self, org_id: str) -> bool:
        """Whether a mark of this org left in the last moments (billing may still be applying it)."""
        at = self._marked_at.get(org_id)
        return at is not None and self._clock() - at < RECENT_S

    def _write_pending(self) -> None:
        call = self._call
        if call is None or not self._pending:
            return
        batch = billing_pb2.HoldMarks(marks=self._pending)
        count, written = len(self._pending), self._next
        self._pending, self._next = [], None
        writing = asyncio.ensure_future(call.write(batch))
        self._writing = writing
        writing.add_done_callback(lambda done: self._written(done, count, written))

    def _written(self, done: asyncio.Future[None], count: int, written: asyncio.Future[None] | None) -> None:
        self._writing = None
        if written is not None:
            _set_done(written)
        if done.cancelled() or done.exception() is not None:
            self._dropped.inc(count)
            self._broken("write failed")
            return
        self._sent.inc(count)
        if len(self._marked_at) > 10_000:
            cutoff = self._clock() - RECENT_S
            self._marked_at = {org: at for org, at in self._marked_at.items() if at >= cutoff}
        self._write_pending()

    def _overdue(self, written: asyncio.Future[None]) -> None:
        """A write not completed within max_wait_s: its answers go on (the usage events still carry
        the money while the gateway lives)."""
        if not written.done():
            self._late.inc()
            written.set_result(None)

    def _broken(self, why: str) -> None:
        call, self._call = self._call, None
        if call is not None:
            log.warning("hold mark stream lost (%s); reconnecting", why)
        self._dropped.inc(len(self._pending))
        self._pending = []
        if self._next is not None:
            _set_done(self._next)
            self._next = None

    async def run(self) -> None:
        """Keeps one stream open to billing, reopening it after a failure."""
        while not self._closing:
            call = self._stub.MarkHolds(wait_for_ready=True)
            try:
                await call.wait_for_connection()
                self._call = call
                summary = await call
                log.info(
                    "hold mark stream closed", extra={"marks": summary.marks, "accepted": summary.accepted}
                )
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if self._closing or (task is not None and task.cancelling()):
                    call.cancel()
                    raise
                # the call itself was cancelled (grpc raises CancelledError for it): reconnect
            except (grpc.RpcError, asyncio.InvalidStateError) as exc:
                if not self._closing:
                    log.warning("hold mark stream ended: %r", exc)
            finally:
                if self._call is call:
                    self._broken("stream ended")
            if not self._closing:
                await asyncio.sleep(self._reconnect)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Writes what is queued, then ends the stream (billing answers with its summary)."""
        self._closing = True
        call = self._call
        if call is None:
            return
        with contextlib.suppress(Exception):
            deadline = time.monotonic() + timeout_s
            while (self._writing is not None or self._pending) and time.monotonic() < deadline:
                if self._writing is None:
                    self._write_pending()
                await asyncio.sleep(0.005)
            await asyncio.wait_for(call.done_writing(), max(deadline - time.monotonic(), 0.1))
            await asyncio.wait_for(call, max(deadline - time.monotonic(), 0.1))
