"""POST /v1/chat/completions: a raw-Request route, so FastAPI adds no body model or validation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollgate.gateway.completions.service import ChatCompletions


def build_router(chat: ChatCompletions) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/chat/completions", include_in_schema=True)
    async def chat_completions(request: Request) -> Response:
        return await chat.handle(request)

    return router
