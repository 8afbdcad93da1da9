"""Client for billing's Reserve/Release over gRPC."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import grpc
from grpc import aio
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tollgate.common.auth_client import Principal
from tollgate.common.errors import ServiceUnavailable
from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.pricing.refusals import refusal

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("tollgate.gateway")


def _caller(principal: Principal, model: str) -> dict[str, Any]:
    """The fields Reserve and ReserveStock share: whose wallet, key, quota and model."""
    return {
        "org_id": principal.org_id,
        "key_id": principal.key_id,
        "month_quota_micros": principal.month_quota_micros,
        "user_id": principal.user_id,
        "model": model,
    }


class RecentMarks(Protocol):
    def marked_recently(self, org_id: str) -> bool: ...


class BillingClient:
    def __init__(
        self,
        channel: aio.Channel,
        timeout_s: float = 2.0,
        *,
        marks: RecentMarks | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        """With `marks` (usage/marks.py), a Reserve refused right after a mark of the same org left
        is asked once more: the mark (which lowers an answered request's hold to its actual cost)
        may have crossed this Reserve on its way into billing."""
        self._stub = billing_pb2_grpc.BillingServiceStub(channel)
        self._timeout = timeout_s
        self._marks = marks
        self._metrics = metrics

    async def reserve(
        self, principal: Principal, request_id: str, max_cost_micros: int, model: str
    ) -> billing_pb2.ReserveResponse:
        """Raises grpc.RpcError when billing can't answer; the caller refuses the request then.
        Billing checks the wallet, the key's month_quota and budgets; `reason` says which refused."""
        request = billing_pb2.ReserveRequest(
            request_id=request_id, max_cost_micros=max_cost_micros, **_caller(principal, model)
        )
        reply: billing_pb2.ReserveResponse = await self._stub.Reserve(request, timeout=self._timeout)
        if not reply.granted and self._marks is not None and self._marks.marked_recently(principal.org_id):
            if self._metrics is not None:
                self._metrics.reserve_retries.inc()
            reply = await self._stub.Reserve(request, timeout=self._timeout)
        return reply

    async def reserve_stock(
        self, principal: Principal, hold_ids: list[str], max_cost_micros: int, model: str
    ) -> tuple[list[str], str]:
        """Holds for the key's coming requests (completions/hold_stock.py): the ids billing placed,
        and why it placed fewer ("" when all). Raises grpc.RpcError when billing can't answer."""
        request = billing_pb2.ReserveStockRequest(
            hold_ids=hold_ids, max_cost_micros=max_cost_micros, **_caller(principal, model)
        )
        reply = await self._stub.ReserveStock(request, timeout=self._timeout)
        return list(reply.hold_ids), reply.stopped

    async def release(self, org_id: str, hold_id: str) -> bool:
        """Best effort: a hold that can't be released now expires on billing's side."""
        try:
            reply = await self._stub.Release(
                billing_pb2.ReleaseRequest(org_id=org_id, hold_id=hold_id), timeout=self._timeout
            )
        except grpc.RpcError:
            log.warning("release of hold %s failed; it will expire", hold_id, exc_info=True)
            return False
        return bool(reply.released)


class Reserver(Protocol):
    async def reserve(
        self, principal: Principal, request_id: str, max_cost_micros: int, model: str
    ) -> billing_pb2.ReserveResponse: ...


async def place_hold(
    billing: Reserver,
    metrics: GatewayMetrics,
    principal: Principal,
    request_id: str,
    max_cost_micros: int,
    model: str,
) -> billing_pb2.ReserveResponse:
    """Reserve, or raise the error the refusal maps to (402 / 402 / 429) before any upstream call."""
    with _tracer.start_as_current_span("billing.reserve", kind=SpanKind.CLIENT):
        try:
            reply = await billing.reserve(principal, request_id, max_cost_micros, model)
        except grpc.RpcError as exc:
            raise ServiceUnavailable("The billing service is unavailable; retry shortly.") from exc
    if not reply.granted:
        metrics.holds_refused.labels(reply.reason or "insufficient_credits").inc()
        raise refusal(reply.reason, max_cost_micros, reply.available_micros)
    return reply
