"""Billing's Reserve/Release over gRPC, for a job's estimated-cost hold."""

from __future__ import annotations

import logging
from typing import Protocol

from grpc import aio

from tollgate.common.auth_client import Principal
from tollgate.common.errors import InsufficientCredits, RateLimited, ServiceUnavailable, TollgateError
from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc

log = logging.getLogger(__name__)


class Holds(Protocol):
    async def hold(self, principal: Principal, hold_id: str, amount_micros: int, model: str) -> int: ...
    async def release(self, org_id: str, hold_id: str) -> None: ...


class QuotaExceeded(RateLimited):
    code = "quota_exceeded"


class BudgetExceeded(InsufficientCredits):
    code = "budget_exceeded"


class BillingHolds:
    def __init__(self, channel: aio.Channel, *, ttl_seconds: int, timeout_s: float = 5.0) -> None:
        self._stub = billing_pb2_grpc.BillingServiceStub(channel)
        self._ttl = ttl_seconds
        self._timeout = timeout_s

    async def hold(self, principal: Principal, hold_id: str, amount_micros: int, model: str) -> int:
        """Places the hold (idempotent on hold_id) or raises the refusal (402/429) before any work."""
        request = billing_pb2.ReserveRequest(
            org_id=principal.org_id,
            key_id=principal.key_id,
            request_id=hold_id,
            max_cost_micros=amount_micros,
            month_quota_micros=principal.month_quota_micros,
            user_id=principal.user_id,
            model=model,
            hold_ttl_seconds=self._ttl,
        )
        try:
            reply = await self._stub.Reserve(request, timeout=self._timeout)
        except aio.AioRpcError as exc:
            log.warning("billing unavailable", extra={"grpc_code": str(exc.code())})
            raise ServiceUnavailable("Billing is unavailable, retry shortly.") from exc
        if reply.granted:
            return int(reply.hold_micros)
        raise _refusal(reply.reason, amount_micros, reply.available_micros)

    async def release(self, org_id: str, hold_id: str) -> None:
        try:
            await self._stub.Release(
                billing_pb2.ReleaseRequest(org_id=org_id, hold_id=hold_id), timeout=self._timeout
            )
        except aio.AioRpcError:  # the hold expires on its own; nothing is charged for it
            log.warning("releasing a training hold failed", extra={"hold_id": hold_id}, exc_info=True)


def _refusal(reason: str, needed: int, available: int) -> TollgateError:
    credits = f"needs {needed / 1_000_000:.6f} credits, {max(available, 0) / 1_000_000:.6f} available"
    if reason == "quota_exceeded":
        return QuotaExceeded(f"The key's monthly quota cannot cover this job's estimated cost ({credits}).")
    if reason == "budget_exceeded":
        return BudgetExceeded(f"A budget cannot cover this job's estimated cost ({credits}).")
    return InsufficientCredits(f"Insufficient credits for this job's estimated cost ({credits}).")
