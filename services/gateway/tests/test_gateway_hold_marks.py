"""HoldMarker (usage/marks.py) over a real TCP connection to an in-process stand-in of billing's marks
port that decodes the frames: marks arrive whole and in order and are out of the process when `mark`
returns, an answer waits (bounded) only while billing does not read, marks are dropped (counted)
while billing is unreachable or too far behind, and flow again once it is back."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

import pytest
import uvloop
from prometheus_client import CollectorRegistry

from tollgate.common.auth_client import Principal
from tollgate.common.frames import FrameDecoder
from tollgate.contracts.v1 import billing_pb2, events_pb2
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.usage.events import usage_event
from tollgate.gateway.usage.marks import HoldMarker

PRINCIPAL = Principal(7, "org-7", "user-7", "user", 0, ("read", "write"), "tg_x", 0, 0)


class RecordingBilling:
    """Billing's marks port: every frame decoded and kept; `stall()` stops reading."""

    def __init__(self) -> None:
        self.messages: list[billing_pb2.HoldMarks] = []
        self.connections: list[asyncio.Transport] = []
        self.server: asyncio.Server | None = None

    def protocol(self) -> asyncio.Protocol:
        billing, decoder = self, FrameDecoder()

        class Connection(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                billing.connections.append(cast(asyncio.Transport, transport))  # uvloop's or asyncio's

            def data_received(self, data: bytes) -> None:
                billing.messages.extend(billing_pb2.HoldMarks.FromString(f) for f in decoder.feed(data))

        return Connection()

    async def serve(self, port: int = 0) -> int:
        # a small receive buffer: a stalled billing fills it with little
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.bind(("127.0.0.1", port))
        self.server = await asyncio.get_running_loop().create_server(self.protocol, sock=sock)
        return int(sock.getsockname()[1])

    def stall(self) -> None:
        for transport in self.connections:
            transport.pause_reading()

    def resume(self) -> None:
        for transport in self.connections:
            transport.resume_reading()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for transport in self.connections:
            transport.abort()
        await self.server.wait_closed()

    @property
    def marks(self) -> list[billing_pb2.HoldMark]:
        return [m for batch in self.messages for m in batch.marks]


def event(i: int, cost: int = 100):  # type: ignore[no-untyped-def]
    return usage_event(
        request_id=f"req-{i}",
        principal=PRINCIPAL,
        model="m",
        provider="p",
        tokens_in=1,
        tokens_out=2,
        cost_micros=cost,
        status="ok",
        hold_id=f"hold-{i}",
        started_at_unix_ms=1,
        finished_at_unix_ms=2,
        latency_ms=1,
        endpoint="/v1/chat/completions",
        stream=False,
        tokens_estimated=False,
        headers=[("event-type", b"UsageRecorded"), ("traceparent", b"00-abc-def-01")],
    )


async def until(probe, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not probe():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def new_metrics() -> GatewayMetrics:
    return GatewayMetrics(CollectorRegistry())


@pytest.fixture
def metrics() -> GatewayMetrics:
    return new_metrics()


def count(metrics: GatewayMetrics, outcome: str) -> float:
    return metrics.hold_marks.labels(outcome)._value.get()  # type: ignore[no-any-return]


async def connected_marker(
    port: int, metrics: GatewayMetrics, **options: float
) -> tuple[HoldMarker, asyncio.Task[None]]:
    marker = HoldMarker(f"127.0.0.1:{port}", metrics, **options)  # type: ignore[arg-type]
    runner = asyncio.create_task(marker.run())
    await until(lambda: marker.connected, within=15)
    return marker, runner


async def test_a_mark_is_out_of_the_process_when_mark_returns_and_reaches_billing_whole(
    metrics: GatewayMetrics,
) -> None:
    billing = RecordingBilling()
    marker, runner = await connected_marker(await billing.serve(), metrics)
    assert marker.mark(event(1, cost=1234)) is None  # in the kernel already: nothing to wait for
    await until(lambda: len(billing.marks) == 1)
    [mark] = billing.marks
    assert (mark.org_id, mark.hold_id, mark.cost_micros) == ("org-7", "hold-1", 1234)
    assert events_pb2.UsageRecorded.FromString(mark.usage_event).event_id == "req-1"
    assert [(h.key, h.value) for h in mark.headers] == [
        ("event-type", b"UsageRecorded"),
        ("traceparent", b"00-abc-def-01"),
    ]
    assert marker.marked_recently("org-7") and not marker.marked_recently("org-8")
    await marker.close()
    runner.cancel()
    await billing.stop()
    assert count(metrics, "sent") == 1 and count(metrics, "dropped") == 0


async def test_many_marks_arrive_whole_and_in_order(metrics: GatewayMetrics) -> None:
    billing = RecordingBilling()
    marker, runner = await connected_marker(await billing.serve(), metrics)
    waits = [marker.mark(event(i)) for i in range(500)]
    await asyncio.gather(*(w for w in waits if w is not None))
    await until(lambda: len(billing.marks) == 500)
    assert [m.hold_id for m in billing.marks] == [f"hold-{i}" for i in range(500)]
    await marker.close()  # closing writes what is still buffered
    runner.cancel()
    await billing.stop()
    assert count(metrics, "sent") == 500


async def test_the_marks_after_the_first_of_a_turn_share_one_write_that_their_answers_await(
    metrics: GatewayMetrics,
) -> None:
    """Under concurrency several answers complete in one turn of the event loop: the first mark is
    written at once, the others together at the turn's end, and their answers wait for that write."""
    billing = RecordingBilling()
    marker, runner = await connected_marker(await billing.serve(), metrics)
    assert marker.mark(event(1)) is None  # the turn's first: in the kernel already
    second, third = marker.mark(event(2)), marker.mark(event(3))
    assert isinstance(second, asyncio.Future) and isinstance(third, asyncio.Future)
    assert not second.done() and not third.done()
    assert count(metrics, "sent") == 1  # not written yet, so their answers must not go yet
    second.cancel()  # its request was cancelled (the client left): the other still gets its write
    await third
    assert count(metrics, "sent") == 3  # written by the time the wait ends
    await until(lambda: [m.hold_id for m in billing.marks] == ["hold-1", "hold-2", "hold-3"])
    assert marker.mark(event(4)) is None  # a later turn's first: written at once again
    await until(lambda: len(billing.marks) == 4)
    await marker.close()
    runner.cancel()
    await billing.stop()


async def test_marks_are_dropped_while_billing_is_away_and_flow_again_when_it_is_back(
    metrics: GatewayMetrics, unused_tcp_port: int
) -> None:
    marker = HoldMarker(f"127.0.0.1:{unused_tcp_port}", metrics, reconnect_s=0.05)
    runner = asyncio.create_task(marker.run())
    await asyncio.sleep(0.1)
    assert marker.mark(event(1)) is None  # nobody to send it to: the usage event carries the money
    assert count(metrics, "dropped") == 1 and count(metrics, "sent") == 0
    billing = RecordingBilling()
    await billing.serve(unused_tcp_port)
    await until(lambda: marker.connected, within=15)
    assert marker.mark(event(2)) is None
    await until(lambda: [m.hold_id for m in billing.marks] == ["hold-2"])
    await billing.stop()  # billing restarts: the connection breaks, the marker reopens it
    await until(lambda: not marker.connected)
    billing_again = RecordingBilling()
    await billing_again.serve(unused_tcp_port)
    await until(lambda: marker.connected, within=15)
    assert marker.mark(event(3)) is None
    await until(lambda: [m.hold_id for m in billing_again.marks] == ["hold-3"])
    await marker.close()
    runner.cancel()
    await billing_again.stop()


async def test_an_answer_waits_while_billing_does_not_read_up_to_the_bound(metrics: GatewayMetrics) -> None:
    """A gateway killed after answering must have handed billing its mark: a mark the kernel could
    not take whole (billing not reading) makes its caller wait, until max_wait_s lets the answer go
    (counted late); marks written behind it share that wait, and all arrive once billing reads."""
    await _waits_while_billing_does_not_read(metrics)


def test_on_uvloop_too_a_mark_is_out_when_mark_returns_and_waits_only_for_a_stalled_billing() -> None:
    """The gateway runs on uvloop, whose transports are not asyncio's: the same two guarantees."""
    uvloop.run(test_a_mark_is_out_of_the_process_when_mark_returns_and_reaches_billing_whole(new_metrics()))
    uvloop.run(
        test_the_marks_after_the_first_of_a_turn_share_one_write_that_their_answers_await(new_metrics())
    )
    uvloop.run(_waits_while_billing_does_not_read(new_metrics()))


async def _waits_while_billing_does_not_read(metrics: GatewayMetrics) -> None:
    billing = RecordingBilling()
    marker, runner = await connected_marker(
        await billing.serve(), metrics, max_wait_s=0.6, max_buffer_bytes=64 * 1024 * 1024
    )
    billing.stall()
    big = event(1)
    big.value = big.value + b"\x00" * 12_000_000  # past what the kernel's buffers take unread
    waiting = marker.mark(big)
    assert waiting is not None
    queued = marker.mark(event(2))  # the same turn: written at its end, behind the full buffer
    assert queued is not None and queued is not waiting
    await asyncio.sleep(0.3)
    assert not waiting.done() and not queued.done()  # the bytes have not left: answers wait
    assert count(metrics, "late") == 0
    await asyncio.wait_for(asyncio.shield(waiting), 1)
    await asyncio.wait_for(asyncio.shield(queued), 0.1)  # one wait for everything behind the buffer
    assert count(metrics, "late") == 1
    billing.resume()  # billing reads again: both arrive, in order
    await until(lambda: [m.hold_id for m in billing.marks] == ["hold-1", "hold-2"], within=10)
    assert count(metrics, "sent") == 2
    await marker.close()
    runner.cancel()
    await billing.stop()


async def test_marks_are_dropped_once_too_much_waits_for_a_stalled_billing(metrics: GatewayMetrics) -> None:
    billing = RecordingBilling()
    marker, runner = await connected_marker(
        await billing.serve(), metrics, max_wait_s=0.05, max_buffer_bytes=1024 * 1024
    )
    billing.stall()
    big = event(1)
    big.value = big.value + b"\x00" * 12_000_000
    assert marker.mark(big) is not None
    assert marker.mark(event(2)) is None  # over the bound: dropped, its usage event carries the money
    assert count(metrics, "dropped") == 1 and count(metrics, "sent") == 1
    billing.resume()
    await until(lambda: [m.hold_id for m in billing.marks] == ["hold-1"], within=10)
    await marker.close()
    runner.cancel()
    await billing.stop()
