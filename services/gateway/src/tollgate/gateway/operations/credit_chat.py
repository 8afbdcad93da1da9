"""The credit chat API: `POST /api/v1/chat` (1 credit a request, `?batch=1` 2 credits)
and `GET /api/models`.

Priced flat: the model's per-request price, else GATEWAY_DEFAULT_REQUEST_PRICE (1 credit), times
the batch multiplier for `?batch=1`; tokens are not priced on this route. The answer is OpenAI's
chat completion plus `credits_charged`, `credits_remaining` and `batch_request`; errors are
`{"error": "<message>"}` (envelopes.credit_chat_body). Usage goes through the same usage event.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollgate.common.errors import InvalidRequest, NotFound
from tollgate.common.http import ORJSONResponse
from tollgate.gateway.envelopes import CREDIT_CHAT, credits
from tollgate.gateway.operations import requests as parse
from tollgate.gateway.operations.metering import bound
from tollgate.gateway.operations.service import Operations
from tollgate.gateway.pipeline import Call
from tollgate.gateway.pricing.cost import Operation, batch_requested, flat_request_cost
from tollgate.gateway.principals.grants import ensure_model_allowed, fine_tuned_owner, may_call
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER

CHAT_PATH = "/api/v1/chat"
MISSING_FIELDS = "Missing required fields: model and messages array"


def _chat_fields(body: bytes) -> dict[str, Any]:
    try:
        payload = parse.json_object(body)
    except InvalidRequest:
        raise InvalidRequest(MISSING_FIELDS) from None
    model, messages = payload.get("model"), payload.get("messages")
    if not isinstance(model, str) or not model or not isinstance(messages, list) or not messages:
        raise InvalidRequest(MISSING_FIELDS)
    parse.messages(payload)
    return payload


def build_router(ops: Operations, default_max_tokens: int) -> APIRouter:
    router = APIRouter()

    @router.post(CHAT_PATH)
    async def chat(request: Request) -> Response:
        request.state.envelope = CREDIT_CHAT
        principal = await ops.principal(request.headers)
        payload = _chat_fields(await request.body())
        name: str = payload["model"]
        max_tokens = parse.optional_positive_int(payload, "max_tokens") or default_max_tokens
        payload["max_tokens"] = max_tokens  # the API's default (150) is sent to the provider
        payload.pop("stream", None)  # the route answers in one piece
        payload.pop("stream_options", None)
        batch = batch_requested(request.scope["query_string"])
        try:
            entry = ops.model(name)
        except NotFound:
            raise NotFound(f"Model '{name}' not found", param="model", code="model_not_found") from None
        ensure_model_allowed(principal, entry.name)  # the key's model grants (403)
        call = Call(
            principal,
            entry,
            Operation.CHAT,
            CHAT_PATH,
            payload,
            bound(Operation.CHAT, payload, max_tokens),
            family="credit_chat",
            batch=batch,
            flat=True,
            route_limits=ops.route_limits.credit_chat(request.scope),
        )
        result = await ops.run(call, request.scope["state"]["request_id"])
        data = result.data
        data["model"] = entry.name
        usage = result.usage
        data["usage"] = {
            "prompt_tokens": usage.tokens_in,
            "completion_tokens": usage.tokens_out,
            "total_tokens": usage.tokens_in + usage.tokens_out,
        }
        data["credits_charged"] = credits(result.cost_micros)
        data["credits_remaining"] = credits(result.remaining_micros)
        data["batch_request"] = batch
        return ORJSONResponse(data, headers={DEPLOYMENT_HEADER: result.deployment})

    @router.get("/api/models")
    async def models(request: Request) -> Response:
        """Public like the original API's (no key needed); with a key, only the models it may call."""
        request.state.envelope = CREDIT_CHAT
        has_key = request.headers.get("authorization") or request.headers.get("x-api-key")
        principal = await ops.principal(request.headers, "GET") if has_key else None
        data = [
            {
                "id": e.name,
                "object": "model",
                "owned_by": e.provider,
                "credits_per_request": credits(flat_request_cost(e, ops.pricing)),
                "credits_per_batch_request": credits(flat_request_cost(e, ops.pricing, batch=True)),
            }
            for e in ops.entries()
            # fine-tuned models are their organisation's alone: never listed publicly or to others
            if (fine_tuned_owner(e.name) is None if principal is None else may_call(principal, e.name))
        ]
        return ORJSONResponse({"object": "list", "data": data})

    return router
