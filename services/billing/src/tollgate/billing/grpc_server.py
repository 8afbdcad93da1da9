"""BillingService over gRPC (the gateway's hot path): thin mapping onto HoldService."""

from __future__ import annotations

import logging
import time

import grpc
from grpc import aio

from tollgate.billing.holds.service import HoldService
from tollgate.billing.holds.store import valid_id
from tollgate.billing.metrics import BillingMetrics
from tollgate.common.grpc import ServerTLS, add_listener, make_server
from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc

log = logging.getLogger(__name__)

_MAX_STOCK = 64  # holds one ReserveStock may place


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, holds: HoldService, metrics: BillingMetrics) -> None:
        self._holds = holds
        self._metrics = metrics

    async def Reserve(
        self, request: billing_pb2.ReserveRequest, context: aio.ServicerContext
    ) -> billing_pb2.ReserveResponse:
        started = time.perf_counter()
        await _require_ids(context, request.org_id, request.request_id)
        numbers = (
            request.max_cost_micros,
            request.month_quota_micros,
            request.key_id,
            request.hold_ttl_seconds,
        )
        if min(numbers) < 0:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "max_cost_micros, month_quota_micros, key_id and hold_ttl_seconds must be >= 0",
            )
        result = await self._holds.reserve(
            request.org_id,
            request.request_id,
            request.max_cost_micros,
            key_id=request.key_id,
            month_quota_micros=request.month_quota_micros,
            ttl_seconds=request.hold_ttl_seconds,
        )
        self._metrics.reserve_seconds.observe(time.perf_counter() - started)
        return billing_pb2.ReserveResponse(
            granted=result.granted,
            hold_id=result.hold_id,
            available_micros=result.available_micros,
            reason=result.reason,
            hold_micros=result.hold_micros,
            balance_micros=result.balance_micros,
            stockable=result.stockable,
        )

    async def ReserveStock(
        self, request: billing_pb2.ReserveStockRequest, context: aio.ServicerContext
    ) -> billing_pb2.ReserveStockResponse:
        await _require_ids(context, request.org_id, *request.hold_ids)
        if not request.hold_ids or len(request.hold_ids) > _MAX_STOCK:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"1-{_MAX_STOCK} hold_ids")
        if request.max_cost_micros <= 0 or request.month_quota_micros < 0 or request.key_id < 0:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "max_cost_micros must be > 0, month_quota_micros and key_id >= 0",
            )
        placed, stopped = await self._holds.reserve_stock(
            request.org_id,
            list(request.hold_ids),
            request.max_cost_micros,
            key_id=request.key_id,
            month_quota_micros=request.month_quota_micros,
        )
        return billing_pb2.ReserveStockResponse(hold_ids=placed, stopped=stopped)

    async def Release(
        self, request: billing_pb2.ReleaseRequest, context: aio.ServicerContext
    ) -> billing_pb2.ReleaseResponse:
        await _require_ids(context, request.org_id, request.hold_id)
        return billing_pb2.ReleaseResponse(
            released=await self._holds.release(request.org_id, request.hold_id)
        )

    async def GetBalance(
        self, request: billing_pb2.GetBalanceRequest, context: aio.ServicerContext
    ) -> billing_pb2.GetBalanceResponse:
        await _require_ids(context, request.org_id)
        wallet = await self._holds.balance(request.org_id)
        return billing_pb2.GetBalanceResponse(
            balance_micros=wallet.balance_micros,
            held_micros=wallet.held_micros,
            available_micros=wallet.available_micros,
        )


async def _require_ids(context: aio.ServicerContext, *values: str) -> None:
    for value in values:
        if not valid_id(value):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ids must be 1-256 characters, no newline")


def build_grpc_server(
    holds: HoldService, metrics: BillingMetrics, host: str, port: int, *, tls: ServerTLS | None = None
) -> tuple[aio.Server, int]:
    """The server (not started) and the port it bound (useful when asked for port 0)."""
    server = make_server("billing")
    billing_pb2_grpc.add_BillingServiceServicer_to_server(BillingServicer(holds, metrics), server)
    bound = add_listener(server, f"{host}:{port}", tls)
    return server, bound
