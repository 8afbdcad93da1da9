"""Hold marks: an answered request's actual cost and usage event, handed to billing as it answers.

Why (docs/billing.md, "Holds at answer time"): billing holds a request's maximum cost until its
usage event settles, 30-125 ms after the answer; a key whose balance is under two maximum costs was
refused its next back-to-back request although it could pay. And a gateway killed right after
answering lost the events still in its Kafka producer's linger buffer: answered, never billed.
A mark fixes both. Billing lowers the hold to the actual cost at once, and keeps the usage event in
the hold; if no event settles it within a grace period, billing's sweeper publishes the kept copy
(same event id, so whichever copy comes first is counted, once).

How: one long-lived TCP connection (TLS as the gRPC channels are) to billing's marks port, carrying
length-prefixed `HoldMarks` frames (tollgate.common.frames), one per answer. `transport.write`
gives the frame to the kernel in the same call, so when `mark` returns None the mark is already out
of this process (on loopback or a LAN, in billing's receive queue): a gateway SIGKILLed after
answering has given billing its copy, and the answer waited for nothing. Answers that complete in
the same turn of the event loop (under concurrency) share a write: the first writes its mark at
once, the others' marks go together once the turn's ready callbacks have run, and those answers
await that write (one write and one segment for billing instead of one each). Only when the kernel's
buffer is full (billing stalled) does the caller get something to await: the buffer draining, at
most `max_wait_s` (then its answer goes on, counted as `late`). While billing is unreachable marks
are dropped (counted): the usage event still carries the money. Billing never writes on this
connection (a peer that closes with unread input resets the connection, losing what it sent).
A gRPC stream did this before and cost the answer a write completion from grpc's poller thread:
docs/benchmarks.md, "What the hold marks cost, process by process".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import cast

from tollgate.common.frames import encode_frame
from tollgate.common.networks import split_host_port
from tollgate.common.waits import timed
from tollgate.contracts.v1 import billing_pb2
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.usage.events import OutgoingEvent

log = logging.getLogger(__name__)

RECENT_S = 0.25  # a Reserve refused this soon after a mark of its org is asked once more
CONNECT_TIMEOUT_S = 5.0
MAX_BUFFER_BYTES = 8 * 1024 * 1024  # marks waiting in this process for a stalled billing, at most


class _Link(asyncio.Protocol):
    """One connection: tells the marker when its buffer empties and when it is gone."""

    def __init__(self, on_drained: Callable[[], None]) -> None:
        self._on_drained = on_drained
        self.transport: asyncio.WriteTransport | None = None
        self.paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a TCP transport (uvloop's is no subclass of asyncio's classes, hence the cast)
        self.transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:  # billing sends nothing; read whatever comes
        return

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._on_drained()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class HoldMarker:
    def __init__(
        self,
        target: str,
        metrics: GatewayMetrics,
        *,
        tls: ssl.SSLContext | None = None,
        server_name: str = "",
        max_wait_s: float = 0.25,
        max_buffer_bytes: int = MAX_BUFFER_BYTES,
        reconnect_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`target` is billing's marks port (host:port); `server_name` the name its certificate
        carries when it is not the target's host; past `max_buffer_bytes` waiting in this process
        (billing stalled) marks are dropped."""
        address = split_host_port(target)
        if address is None:
            raise ValueError(f"billing's marks target {target!r} is not host:port")
        self._host, self._port = address
        self._tls = tls
        self._server_name = server_name
        self._metrics = metrics
        self._max_wait = max_wait_s
        self._max_buffer = max_buffer_bytes
        self._reconnect = reconnect_s
        self._clock = clock
        self._link: _Link | None = None
        # answers waiting for the buffer to drain, a future each (a cancelled request cancels what
        # it awaits, which must not fail the others), and the timer that lets them go at max_wait_s
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._drain_timer: asyncio.TimerHandle | None = None
        # marks of this turn of the event loop after its first (written at once), and what their
        # answers await (a future each, as above): they go in one write when the turn's ready
        # callbacks have run
        self._turn: list[bytes] | None = None
        self._turn_waiters: list[asyncio.Future[None]] = []
        self._marked_at: dict[str, float] = {}  # org -> when its last mark was written
        self._closing = False
        self._sent = metrics.hold_marks.labels("sent")
        self._dropped = metrics.hold_marks.labels("dropped")
        self._late = metrics.hold_marks.labels("late")

    @property
    def connected(self) -> bool:
        return self._link is not None

    def mark(self, event: OutgoingEvent) -> Awaitable[None] | None:
        """Writes the mark of a charged request. None when it is out of this process (or was
        dropped); otherwise awaiting the result returns once it is, or after `max_wait_s`."""
        link = self._link
        transport = link.transport if link is not None else None
        if transport is None or self._closing or transport.get_write_buffer_size() > self._max_buffer:
            self._dropped.inc()
            return None
        frame = billing_pb2.HoldMarks()
        frame.marks.add(  # built in place: HoldMarks(marks=[mark]) would copy the mark
            org_id=event.org_id,
            hold_id=event.hold_id,
            cost_micros=event.cost_micros,
            usage_event=event.value,
            headers=[billing_pb2.KafkaHeader(key=k, value=v) for k, v in event.headers],
        )
        data = encode_frame(frame.SerializeToString())
        now = self._clock()
        self._marked_at[event.org_id] = now
        if len(self._marked_at) > 10_000:
            cutoff = now - RECENT_S
            self._marked_at = {org: at for org, at in self._marked_at.items() if at >= cutoff}
        if self._turn is not None:
            # another answer of this turn wrote its mark already (concurrency): this one goes with
            # the turn's others in one write, one segment for billing, and its answer waits for it
            self._turn.append(data)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._turn_waiters.append(waiter)
            return waiter
        transport.write(data)
        self._sent.inc()
        self._turn = []
        asyncio.get_running_loop().call_soon(self._end_turn)
        assert link is not None
        if not link.paused:
            return None
        waiter = asyncio.get_running_loop().create_future()
        self._wait_for_drain([waiter])
        return waiter

    def _wait_for_drain(self, waiters: list[asyncio.Future[None]]) -> None:
        self._drain_waiters += waiters
        if self._drain_timer is None:  # one timer for every answer waiting on this buffer
            self._drain_timer = asyncio.get_running_loop().call_later(self._max_wait, self._overdue)

    def _end_turn(self) -> None:
        """Writes the marks that came after the turn's first, and lets their answers go."""
        frames, self._turn = self._turn, None
        waiters, self._turn_waiters = self._turn_waiters, []
        if not frames:
            return
        link = self._link
        transport = link.transport if link is not None else None
        if link is None or transport is None or transport.is_closing():
            self._dropped.inc(len(frames))  # billing went away within the turn
            _release(waiters)
            return
        transport.write(b"".join(frames))
        self._sent.inc(len(frames))
        if link.paused:
            self._wait_for_drain(waiters)
        else:
            _release(waiters)

    def marked_recently(self, org_id: str) -> bool:
        """Whether a mark of this org left in the last moments (billing may still be applying it)."""
        at = self._marked_at.get(org_id)
        return at is not None and self._clock() - at < RECENT_S

    def _release_waiters(self) -> None:
        """The buffer drained (or the connection is gone): the waiting answers go on."""
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        waiters, self._drain_waiters = self._drain_waiters, []
        _release(waiters)

    def _overdue(self) -> None:
        """The buffer did not drain within max_wait_s: its answers go on (the usage events still
        carry the money while the gateway lives)."""
        self._drain_timer = None
        waiters, self._drain_waiters = self._drain_waiters, []
        if any(not waiter.done() for waiter in waiters):
            self._late.inc()
        _release(waiters)

    async def _connect(self) -> _Link:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            _, link = await loop.create_connection(
                lambda: _Link(self._release_waiters),
                self._host,
                self._port,
                ssl=self._tls,
                server_hostname=(self._server_name or self._host) if self._tls is not None else None,
            )
        assert link.transport is not None
        if self._tls is None:
            # paused (and answers wait) as soon as anything stays in this process; over TLS the
            # layer below hands each record to the socket as it is written, and asyncio's TLS
            # transport counts a high-water mark of 0 as always over it
            link.transport.set_write_buffer_limits(high=0)
        return link

    async def run(self) -> None:
        """Keeps one connection open to billing, reopening it after a failure."""
        failed_before = False
        while not self._closing:
            try:
                link = await self._connect()
            except (TimeoutError, OSError, ssl.SSLError) as exc:
                if not failed_before:
                    log.warning("hold mark connection to billing failed: %r; retrying", exc)
                failed_before = True
                await asyncio.sleep(self._reconnect)
                continue
            failed_before = False
            self._link = link
            log.info("hold mark connection to billing open")
            await link.closed  # cancelled at shutdown: the link stays for close() to flush
            if self._link is link:
                self._link = None
            self._release_waiters()
            if not self._closing:
                log.warning("hold mark connection to billing lost; reconnecting")
                await asyncio.sleep(self._reconnect)

    async def close(self, timeout_s: float = 2.0) -> None:
        """Lets the buffered marks go, then closes the connection."""
        self._end_turn()
        self._closing = True
        link = self._link
        if link is None or link.transport is None:
            return
        link.transport.close()  # writes what is buffered first
        with contextlib.suppress(asyncio.TimeoutError):
            await timed(asyncio.shield(link.closed), timeout_s)
        if not link.closed.done():
            link.transport.abort()


def _release(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():  # a cancelled request's
            waiter.set_result(None)
