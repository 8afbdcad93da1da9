"""Client for billing's Reserve/Release over gRPC."""

from __future__ import annotations

import logging

import grpc
from grpc import aio

from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc

log = logging.getLogger(__name__)


class BillingClient:
    def __init__(self, channel: aio.Channel, timeout_s: float = 2.0) -> None:
        self._stub = billing_pb2_grpc.BillingServiceStub(channel)
        self._timeout = timeout_s

    async def reserve(
        self, org_id: str, key_id: int, request_id: str, max_cost_micros: int
    ) -> billing_pb2.ReserveResponse:
        """Raises grpc.RpcError when billing can't answer; the caller refuses the request then."""
        request = billing_pb2.ReserveRequest(
            org_id=org_id, key_id=key_id, request_id=request_id, max_cost_micros=max_cost_micros
        )
        return await self._stub.Reserve(request, timeout=self._timeout)

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
