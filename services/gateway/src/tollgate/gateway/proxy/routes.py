"""Catch-all route forwarding other services' public REST (registered after the gateway's own)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollgate.gateway.proxy.forwarder import Forwarder

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def build_router(forwarder: Forwarder) -> APIRouter:
    router = APIRouter()

    @router.api_route("/{path:path}", methods=METHODS, include_in_schema=False)
    async def forward(request: Request, path: str) -> Response:
        return await forwarder.forward(request)

    return router
