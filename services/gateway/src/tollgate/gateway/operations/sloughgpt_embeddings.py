"""SloughGPT's `POST /embeddings` (`model_id`, `texts`, `dimension`) shares its path with
IndoxRouter's (`provider`, `model`, `text`): a body naming `model_id` or `texts` is SloughGPT's. Same
pipeline and price (the model's embedding price); SloughGPT's answer shape and error envelope."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tollgate.common.http import ORJSONResponse
from tollgate.common.money import micros_to_credits
from tollgate.gateway.envelopes import SLOUGHGPT
from tollgate.gateway.operations import requests as parse
from tollgate.gateway.operations.metering import bound
from tollgate.gateway.operations.service import Operations
from tollgate.gateway.pipeline import Call
from tollgate.gateway.pricing.cost import Operation, batch_requested
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER


def is_sloughgpt_body(body: dict[str, Any]) -> bool:
    return "model_id" in body or "texts" in body


async def sloughgpt_embeddings(request: Request, ops: Operations, body: dict[str, Any]) -> Response:
    request.state.envelope = SLOUGHGPT
    principal = await ops.principal(request.headers)
    name = parse.required_string(body, "model_id")
    texts = parse.text_or_texts(body, "texts")
    dimension = parse.optional_positive_int(body, "dimension")
    entry = ops.model(name, principal)
    payload: dict[str, Any] = {"input": texts}
    if dimension is not None:
        payload["dimensions"] = dimension
    call = Call(
        principal,
        entry,
        Operation.EMBEDDING,
        request.url.path,
        payload,
        bound(Operation.EMBEDDING, payload, 0),
        family="sloughgpt",
        batch=batch_requested(request.scope["query_string"]),
    )
    result = await ops.run(call, request.scope["state"]["request_id"])
    vectors = [d.get("embedding") for d in result.data.get("data") or [] if isinstance(d, dict)]
    width = len(vectors[0]) if vectors and isinstance(vectors[0], list) else 0
    return ORJSONResponse(
        {
            "embeddings": vectors,
            "model_id": name,
            "dimension": width,
            "usage": {"tokens": result.usage.tokens_in, "cost": micros_to_credits(result.cost_micros)},
        },
        headers={DEPLOYMENT_HEADER: result.deployment},
    )
