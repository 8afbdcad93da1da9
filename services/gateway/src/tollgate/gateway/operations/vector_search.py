"""SloughGPT's `POST /search/vector`: the training service owns collections and searches them; a
request that gives `text` instead of `query_vector` is embedded here first, through the same
pipeline, price and billing as any embedding request (model `model_id`, default the local
all-MiniLM-L6-v2), then forwarded with the vector. Errors in SloughGPT's envelope."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.envelopes import SLOUGHGPT
from tollgate.gateway.operations import requests as parse
from tollgate.gateway.operations.metering import bound
from tollgate.gateway.operations.service import Operations
from tollgate.gateway.pipeline import Call
from tollgate.gateway.pricing.cost import Operation
from tollgate.gateway.proxy.forwarder import Forwarder

EMBEDDING_USAGE_HEADER = "x-tollgate-embedding-tokens"


def build_router(ops: Operations, forwarder: Forwarder, default_model: str) -> APIRouter:
    router = APIRouter()

    @router.post("/search/vector")
    async def search_vector(request: Request) -> Response:
        request.state.envelope = SLOUGHGPT
        raw = await request.body()
        body = parse.json_object(raw)
        if "text" not in body:
            return await forwarder.forward(request, "training")
        if "query_vector" in body:
            raise InvalidRequest("Give either 'text' or 'query_vector', not both.", param="text")
        text = parse.required_string(body, "text")
        name = body.get("model_id", default_model)
        if not isinstance(name, str) or not name:
            raise InvalidRequest("'model_id' must be a model name.", param="model_id")
        principal = await ops.principal(request.headers)
        entry = ops.model(name, principal)
        payload: dict[str, Any] = {"input": [text]}
        call = Call(
            principal,
            entry,
            Operation.EMBEDDING,
            request.url.path,
            payload,
            bound(Operation.EMBEDDING, payload, 0),
            family="sloughgpt",
        )
        result = await ops.run(call, request.scope["state"]["request_id"])
        vectors = [d.get("embedding") for d in result.data.get("data") or [] if isinstance(d, dict)]
        forwarded = {k: v for k, v in body.items() if k not in ("text", "model_id")}
        forwarded["query_vector"] = vectors[0] if vectors else []
        response = await forwarder.forward(request, "training", content=orjson.dumps(forwarded))
        response.headers[EMBEDDING_USAGE_HEADER] = str(result.usage.tokens_in)
        return response

    return router
