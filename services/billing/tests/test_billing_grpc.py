"""BillingService over a real gRPC server and channel, and the marks port over a real socket (Redis
real, wallet loader faked)."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator

import grpc
import pytest
from billing_helpers import new_org
from grpc import aio

from tollgate.billing.budgets.repository import LimitsSnapshot
from tollgate.billing.grpc_server import build_grpc_server
from tollgate.billing.holds.mark_listener import MarkListener
from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import HoldStore
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.wallets.repository import WalletState
from tollgate.common.frames import MAX_FRAME_BYTES, encode_frame
from tollgate.common.grpc import make_channel
from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc

ORG = new_org()


async def load(org_id: str) -> WalletState:
    return WalletState(org_id, 5_000 if org_id == ORG else 0, 1)


@pytest.fixture
def holds(store: HoldStore, metrics: BillingMetrics) -> HoldService:
    return HoldService(store, load, metrics)


@pytest.fixture
async def stub(
    holds: HoldService, metrics: BillingMetrics
) -> AsyncIterator[billing_pb2_grpc.BillingServiceStub]:
    server, port = build_grpc_server(holds, metrics, "127.0.0.1", 0)
    await server.start()
    channel = make_channel(f"127.0.0.1:{port}")
    yield billing_pb2_grpc.BillingServiceStub(channel)
    await channel.close()
    await server.stop(grace=None)


async def test_reserve_release_and_balance(stub: billing_pb2_grpc.BillingServiceStub) -> None:
    granted = await stub.Reserve(
        billing_pb2.ReserveRequest(org_id=ORG, key_id=1, request_id="req-a", max_cost_micros=3_000)
    )
    assert (granted.granted, granted.hold_id, granted.available_micros) == (True, "req-a", 5_000)
    again = await stub.Reserve(
        billing_pb2.ReserveRequest(org_id=ORG, key_id=1, request_id="req-a", max_cost_micros=3_000)
    )
    assert again == granted
    refused = await stub.Reserve(
        billing_pb2.ReserveRequest(org_id=ORG, key_id=1, request_id="req-b", max_cost_micros=2_001)
    )
    assert (refused.granted, refused.available_micros, refused.reason) == (
        False,
        2_000,
        "insufficient_credits",
    )
    assert (granted.hold_micros, granted.balance_micros, granted.reason) == (3_000, 5_000, "")
    balance = await stub.GetBalance(billing_pb2.GetBalanceRequest(org_id=ORG))
    assert (balance.balance_micros, balance.held_micros, balance.available_micros) == (5_000, 3_000, 2_000)
    assert (await stub.Release(billing_pb2.ReleaseRequest(org_id=ORG, hold_id="req-a"))).released is True
    assert (await stub.Release(billing_pb2.ReleaseRequest(org_id=ORG, hold_id="req-a"))).released is False
    assert (await stub.GetBalance(billing_pb2.GetBalanceRequest(org_id=ORG))).available_micros == 5_000


@pytest.mark.parametrize(
    "request_",
    [
        billing_pb2.ReserveRequest(org_id="", request_id="r", max_cost_micros=1),
        billing_pb2.ReserveRequest(org_id="o", request_id="", max_cost_micros=1),
        billing_pb2.ReserveRequest(org_id="o", request_id="r", max_cost_micros=-1),
        billing_pb2.ReserveRequest(org_id="o\nx", request_id="r", max_cost_micros=1),
        billing_pb2.ReserveRequest(org_id="o", request_id="r", max_cost_micros=1, month_quota_micros=-1),
        billing_pb2.ReserveRequest(org_id="o", key_id=-3, request_id="r", max_cost_micros=1),
        billing_pb2.ReserveRequest(org_id="o", request_id="r", max_cost_micros=1, hold_ttl_seconds=-1),
    ],
)
async def test_invalid_reserves_are_invalid_argument(
    stub: billing_pb2_grpc.BillingServiceStub, request_: billing_pb2.ReserveRequest
) -> None:
    with pytest.raises(aio.AioRpcError) as err:
        await stub.Reserve(request_)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_reserve_reports_the_quota_refusal_and_the_capped_hold(
    store: HoldStore, metrics: BillingMetrics
) -> None:
    async def limits(org_id: str, month: str, day: str) -> LimitsSnapshot:
        return LimitsSnapshot(spent={(9, month): 4_000})

    holds = HoldService(store, load, metrics, load_limits=limits)
    server, port = build_grpc_server(holds, metrics, "127.0.0.1", 0)
    await server.start()
    try:
        async with make_channel(f"127.0.0.1:{port}") as channel:
            stub = billing_pb2_grpc.BillingServiceStub(channel)
            capped = await stub.Reserve(
                billing_pb2.ReserveRequest(
                    org_id=ORG, key_id=9, request_id="q1", max_cost_micros=800, month_quota_micros=4_500
                )
            )
            assert (capped.granted, capped.hold_micros) == (True, 500)
            refused = await stub.Reserve(
                billing_pb2.ReserveRequest(
                    org_id=ORG, key_id=9, request_id="q2", max_cost_micros=1, month_quota_micros=4_500
                )
            )
            assert (refused.granted, refused.reason, refused.hold_micros) == (False, "quota_exceeded", 0)
    finally:
        await server.stop(grace=None)


async def test_reserve_says_when_a_hold_may_be_stocked(stub: billing_pb2_grpc.BillingServiceStub) -> None:
    # 5,000 available: stockable while 100 more holds of the same size would still fit
    small = await stub.Reserve(
        billing_pb2.ReserveRequest(org_id=ORG, key_id=1, request_id="req-s", max_cost_micros=10)
    )
    big = await stub.Reserve(
        billing_pb2.ReserveRequest(org_id=ORG, key_id=1, request_id="req-b", max_cost_micros=100)
    )
    assert (small.granted, small.stockable) == (True, True)  # 4,990 left >= 100 x 10
    assert (big.granted, big.stockable) == (True, False)  # 4,890 left < 100 x 100


async def test_reserve_stock_places_holds_until_one_would_not_be_stockable(
    stub: billing_pb2_grpc.BillingServiceStub,
) -> None:
    ids = [f"hs_{i}" for i in range(15)]
    reply = await stub.ReserveStock(
        billing_pb2.ReserveStockRequest(org_id=ORG, key_id=1, hold_ids=ids, max_cost_micros=45)
    )
    # after k holds 5,000 - 45k is left; stockable while that is >= 4,500, so k <= 11
    assert (list(reply.hold_ids), reply.stopped) == (ids[:11], "not_stockable")
    balance = await stub.GetBalance(billing_pb2.GetBalanceRequest(org_id=ORG))
    assert balance.held_micros == 11 * 45  # the twelfth was placed, found unstockable, released

    again = await stub.ReserveStock(
        billing_pb2.ReserveStockRequest(org_id=ORG, key_id=1, hold_ids=ids[:3], max_cost_micros=45)
    )
    assert list(again.hold_ids) == ids[:3]  # idempotent per hold id: nothing more is held
    assert (await stub.GetBalance(billing_pb2.GetBalanceRequest(org_id=ORG))).held_micros == 11 * 45

    poor = await stub.ReserveStock(
        billing_pb2.ReserveStockRequest(org_id="org-empty", key_id=2, hold_ids=["hs_x"], max_cost_micros=1)
    )
    assert (list(poor.hold_ids), poor.stopped) == ([], "insufficient_credits")


@pytest.mark.parametrize(
    "request_",
    [
        billing_pb2.ReserveStockRequest(org_id=ORG, hold_ids=[], max_cost_micros=1),
        billing_pb2.ReserveStockRequest(org_id=ORG, hold_ids=["a"] * 65, max_cost_micros=1),
        billing_pb2.ReserveStockRequest(org_id=ORG, hold_ids=["a"], max_cost_micros=0),
        billing_pb2.ReserveStockRequest(org_id=ORG, hold_ids=["a\nb"], max_cost_micros=1),
    ],
)
async def test_reserve_stock_rejects_malformed_requests(
    stub: billing_pb2_grpc.BillingServiceStub, request_: billing_pb2.ReserveStockRequest
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReserveStock(request_)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def until(probe, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + within
    while not probe():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def received(metrics: BillingMetrics, outcome: str) -> float:
    return metrics.marks_received.labels(outcome)._value.get()  # type: ignore[no-any-return]


@pytest.fixture
async def marks_port(holds: HoldService, metrics: BillingMetrics) -> AsyncIterator[tuple[MarkListener, int]]:
    listener = MarkListener(holds.mark, metrics, "127.0.0.1", 0, tls=None)
    port = await listener.start()
    yield listener, port
    await listener.close()


async def test_the_marks_port_marks_in_order_and_skips_malformed_marks(
    stub: billing_pb2_grpc.BillingServiceStub,
    store: HoldStore,
    metrics: BillingMetrics,
    marks_port: tuple[MarkListener, int],
) -> None:
    _, port = marks_port
    org = new_org()  # a fresh prefix for this test's hold ids; the loader funds only ORG
    for hold_id in ("m1", "m2"):
        reply = await stub.Reserve(
            billing_pb2.ReserveRequest(
                org_id=ORG, key_id=1, request_id=f"{org}-{hold_id}", max_cost_micros=1_000
            )
        )
        assert reply.granted
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    event = b"usage-event"
    first = billing_pb2.HoldMarks(
        marks=[
            billing_pb2.HoldMark(org_id=ORG, hold_id=f"{org}-m1", cost_micros=10, usage_event=event),
            billing_pb2.HoldMark(org_id=ORG, hold_id="", cost_micros=10, usage_event=event),  # no hold id
            billing_pb2.HoldMark(org_id=ORG, hold_id=f"{org}-m2", cost_micros=-1, usage_event=event),
        ]
    )
    second = billing_pb2.HoldMarks(
        marks=[
            billing_pb2.HoldMark(org_id=ORG, hold_id=f"{org}-m2", cost_micros=20, usage_event=event),
            billing_pb2.HoldMark(org_id=ORG, hold_id="never-held", cost_micros=5, usage_event=event),
        ]
    )
    framed = encode_frame(first.SerializeToString()) + encode_frame(second.SerializeToString())
    for at in range(0, len(framed), 7):  # frames split anywhere by the network still decode whole
        writer.write(framed[at : at + 7])
        await writer.drain()
    await until(lambda: received(metrics, "accepted") + received(metrics, "malformed") == 5)
    assert received(metrics, "accepted") == 3  # the mark of a hold never held is a no-op
    assert metrics.mark_connections._value.get() == 1
    balance = await stub.GetBalance(billing_pb2.GetBalanceRequest(org_id=ORG))  # writes pending marks
    assert balance.held_micros == 30
    assert await store.read_mark(ORG, f"{org}-m1") is not None
    assert await store.read_mark(ORG, "never-held") is None
    for hold_id in ("m1", "m2"):
        await stub.Release(billing_pb2.ReleaseRequest(org_id=ORG, hold_id=f"{org}-{hold_id}"))
    assert (await stub.GetBalance(billing_pb2.GetBalanceRequest(org_id=ORG))).held_micros == 0
    writer.close()


@pytest.mark.parametrize(
    "garbage",
    [encode_frame(b"\xff\xff\xff"), struct.pack(">I", MAX_FRAME_BYTES + 1)],
    ids=["unparsable", "oversized"],
)
async def test_a_connection_sending_garbage_is_closed_and_the_others_go_on(
    stub: billing_pb2_grpc.BillingServiceStub,
    store: HoldStore,
    metrics: BillingMetrics,
    marks_port: tuple[MarkListener, int],
    garbage: bytes,
) -> None:
    _, port = marks_port
    reply = await stub.Reserve(
        billing_pb2.ReserveRequest(org_id=ORG, key_id=1, request_id=f"{new_org()}-g", max_cost_micros=1_000)
    )
    bad_reader, bad = await asyncio.open_connection("127.0.0.1", port)
    _, good = await asyncio.open_connection("127.0.0.1", port)
    bad.write(garbage)
    assert await asyncio.wait_for(bad_reader.read(), 5) == b""  # billing closed it, saying nothing
    mark = billing_pb2.HoldMark(org_id=ORG, hold_id=reply.hold_id, cost_micros=7, usage_event=b"e")
    good.write(encode_frame(billing_pb2.HoldMarks(marks=[mark]).SerializeToString()))
    await until(lambda: received(metrics, "accepted") == 1)
    assert metrics.mark_connections_refused._value.get() == 1
    await until(lambda: metrics.mark_connections._value.get() == 1)  # the bad one is gone
    await stub.GetBalance(billing_pb2.GetBalanceRequest(org_id=ORG))  # writes pending marks
    assert await store.read_mark(ORG, reply.hold_id) is not None
    await stub.Release(billing_pb2.ReleaseRequest(org_id=ORG, hold_id=reply.hold_id))
    bad.close()
    good.close()
