"""HoldMarker (usage/marks.py) over a real gRPC channel to an in-process billing stand-in that records
the MarkHolds stream: marks arrive whole and in order, batch while a write is in flight, are dropped
(counted) while billing is unreachable, and flow again once it is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from grpc import aio
from prometheus_client import CollectorRegistry

from tollgate.common.auth_client import Principal
from tollgate.common.grpc import make_channel
from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc, events_pb2
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.usage.events import usage_event
from tollgate.gateway.usage.marks import HoldMarker

PRINCIPAL = Principal(7, "org-7", "user-7", "user", 0, ("read", "write"), "tg_x", 0, 0)


class RecordingBilling(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self) -> None:
        self.messages: list[billing_pb2.HoldMarks] = []
        self.streams = 0

    async def MarkHolds(
        self, request_iterator: AsyncIterator[billing_pb2.HoldMarks], context: aio.ServicerContext
    ) -> billing_pb2.MarkHoldsSummary:
        self.streams += 1
        count = 0
        async for batch in request_iterator:
            self.messages.append(batch)
            count += len(batch.marks)
        return billing_pb2.MarkHoldsSummary(marks=count, accepted=count)

    @property
    def marks(self) -> list[billing_pb2.HoldMark]:
        return [m for batch in self.messages for m in batch.marks]


async def serve(billing: RecordingBilling, port: int = 0) -> tuple[aio.Server, int]:
    server = aio.server(options=[("grpc.max_receive_message_length", 32 * 1024 * 1024)])
    billing_pb2_grpc.add_BillingServiceServicer_to_server(billing, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


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


@pytest.fixture
def metrics() -> GatewayMetrics:
    return GatewayMetrics(CollectorRegistry())


def count(metrics: GatewayMetrics, outcome: str) -> float:
    return metrics.hold_marks.labels(outcome)._value.get()  # type: ignore[no-any-return]


async def test_a_mark_reaches_billing_whole_and_its_future_is_done(metrics: GatewayMetrics) -> None:
    billing = RecordingBilling()
    server, port = await serve(billing)
    channel = make_channel(f"127.0.0.1:{port}")
    marker = HoldMarker(channel, metrics)
    runner = asyncio.create_task(marker.run())
    await until(lambda: marker.connected)
    started = marker.mark(event(1, cost=1234))
    assert started is not None
    await asyncio.wait_for(started, 1)
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
    await channel.close()
    await server.stop(None)
    assert count(metrics, "sent") == 1


async def test_marks_made_while_a_write_is_in_flight_go_out_together(metrics: GatewayMetrics) -> None:
    billing = RecordingBilling()
    server, port = await serve(billing)
    channel = make_channel(f"127.0.0.1:{port}")
    marker = HoldMarker(channel, metrics)
    runner = asyncio.create_task(marker.run())
    await until(lambda: marker.connected)
    futures = [marker.mark(event(i)) for i in range(200)]
    await asyncio.gather(*(f for f in futures if f is not None))
    await until(lambda: len(billing.marks) == 200)
    assert [m.hold_id for m in billing.marks] == [f"hold-{i}" for i in range(200)]  # in order
    assert len(billing.messages) < 200  # batched behind the write in flight
    await marker.close()
    runner.cancel()
    await channel.close()
    await server.stop(None)


async def test_marks_are_dropped_while_billing_is_away_and_flow_again_when_it_is_back(
    metrics: GatewayMetrics, unused_tcp_port: int
) -> None:
    channel = make_channel(f"127.0.0.1:{unused_tcp_port}")
    marker = HoldMarker(channel, metrics, reconnect_s=0.05)
    runner = asyncio.create_task(marker.run())
    await asyncio.sleep(0.1)
    assert marker.mark(event(1)) is None  # nobody to send it to: the usage event carries the money
    assert count(metrics, "dropped") == 1
    billing = RecordingBilling()
    server, _ = await serve(billing, unused_tcp_port)
    await until(lambda: marker.connected, within=15)
    started = marker.mark(event(2))
    assert started is not None
    await started
    await until(lambda: [m.hold_id for m in billing.marks] == ["hold-2"])
    await server.stop(None)  # billing restarts: the stream breaks, the marker reopens it
    await until(lambda: not marker.connected)
    billing_again = RecordingBilling()
    server, _ = await serve(billing_again, unused_tcp_port)
    await until(lambda: marker.connected, within=15)
    started = marker.mark(event(3))
    assert started is not None
    await started
    await until(lambda: [m.hold_id for m in billing_again.marks] == ["hold-3"])
    await marker.close()
    runner.cancel()
    await channel.close()
    await server.stop(None)


class StalledBilling(RecordingBilling):
    """Reads nothing from the stream until `reading` is set: writes pile up against flow control."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()

    async def MarkHolds(
        self, request_iterator: AsyncIterator[billing_pb2.HoldMarks], context: aio.ServicerContext
    ) -> billing_pb2.MarkHoldsSummary:
        await self.reading.wait()
        return await super().MarkHolds(request_iterator, context)


async def test_an_answer_waits_for_its_marks_write_to_complete_up_to_the_bound(
    metrics: GatewayMetrics,
) -> None:
    """Waiting for the write to start is not enough: a gateway killed after answering must have handed
    billing its mark. With billing not reading, a mark larger than the flow-control window cannot be
    written: its caller waits, until max_wait_s lets the answer go (counted late)."""
    billing = StalledBilling()
    server, port = await serve(billing)
    channel = make_channel(f"127.0.0.1:{port}")
    marker = HoldMarker(channel, metrics, max_wait_s=0.6)
    runner = asyncio.create_task(marker.run())
    await until(lambda: marker.connected)
    big = event(1)
    big.value = big.value + b"\x00" * 16_000_000  # past what the transport takes unread
    written = marker.mark(big)
    assert written is not None
    queued = marker.mark(event(2))  # behind the stuck write: shares the next write's wait
    assert queued is not None
    await asyncio.sleep(0.3)
    assert not written.done() and not queued.done()  # the bytes have not left: the answers wait
    assert count(metrics, "late") == 0
    await asyncio.wait_for(asyncio.shield(written), 1)
    assert count(metrics, "late") == 1 and count(metrics, "sent") == 0
    billing.reading.set()  # billing reads again: both writes complete, in order
    await asyncio.wait_for(queued, 5)
    await until(lambda: [m.hold_id for m in billing.marks] == ["hold-1", "hold-2"])
    assert count(metrics, "sent") == 2
    await marker.close()
    runner.cancel()
    await channel.close()
    await server.stop(None)
