"""IndoxRouter: `/chat/completions`, `/completions`, `/embeddings`, `/images/generations`
with `provider` + `model`, `GET /models/{provider}/{model}` and `GET /` health.

`provider` + `model` name a catalog model: the catalog name "<provider>/<model>" first, else the
catalog name "<model>" when that model's provider is `provider`. Priced by the model's modes
(`?batch=1` too); `usage.cost` is in credits. Errors: envelopes.indoxrouter_body. `GET /models` and
`GET /models/{id}` are SloughGPT's (the training service's), not these routes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollgate.common.auth_client import Principal
from tollgate.common.errors import InvalidRequest, NotFound
from tollgate.common.http import ORJSONResponse
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.completions.streaming import RelayResponse
from tollgate.gateway.completions.tokens import heuristic_prompt_tokens
from tollgate.gateway.envelopes import INDOXROUTER, credits
from tollgate.gateway.operations import requests as parse
from tollgate.gateway.operations.indoxrouter_envelope import IndoxRouterRelay, envelope, iso
from tollgate.gateway.operations.metering import bound, heuristic_text_tokens
from tollgate.gateway.operations.service import Operations
from tollgate.gateway.operations.sloughgpt_embeddings import is_sloughgpt_body, sloughgpt_embeddings
from tollgate.gateway.pipeline import Call
from tollgate.gateway.pricing.cost import Operation, Usage, batch_requested
from tollgate.gateway.principals.grants import ensure_model_allowed
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER

Shape = Callable[[dict[str, Any]], tuple[Any, dict[str, Any]]]


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else {}
    return first if isinstance(first, dict) else {}


def chat_shape(data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    choice = _first_choice(data)
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    return message.get("content") or "", {"finish_reason": choice.get("finish_reason")}


def completion_shape(data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    choice = _first_choice(data)
    return choice.get("text") or "", {"finish_reason": choice.get("finish_reason")}


def embedding_shape(data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    vectors = [d.get("embedding") for d in data.get("data") or [] if isinstance(d, dict)]
    dimensions = len(vectors[0]) if vectors and isinstance(vectors[0], list) else 0
    return vectors, {"message": "Successfully generated embeddings", "extra": {"dimensions": dimensions}}


def image_shape(data: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    images = [
        {"url": d.get("url"), "b64_json": d.get("b64_json")}
        for d in data.get("data") or []
        if isinstance(d, dict)
    ]
    return images, {"message": "Successfully generated image"}


def _per_1k_tokens(micros_per_million: int | None) -> float | None:
    return None if micros_per_million is None else float(Decimal(micros_per_million) / 10**9)


def model_info(entry: CatalogEntry, provider: str, model: str, batch_multiplier: float) -> dict[str, Any]:
    capabilities = ["chat", "completion", "embedding"] + (["image"] if entry.price_image_micros else [])
    return {
        "id": model,
        "name": entry.name,
        "provider": provider,
        "capabilities": capabilities,
        "description": f"{entry.name} ({entry.provider} upstream {entry.upstream_model})",
        "max_tokens": entry.max_tokens_default,
        "pricing": {  # credits: tokens per 1K as IndoxRouter shows, then per request and per image
            "input": _per_1k_tokens(entry.price_in_micros),
            "output": _per_1k_tokens(entry.price_out_micros),
            "embedding": _per_1k_tokens(entry.price_embedding_micros),
            "request": credits(entry.price_request_micros),
            "image": credits(entry.price_image_micros),
            "batch_multiplier": batch_multiplier,
        },
    }


def build_router(ops: Operations, version: str) -> APIRouter:
    router = APIRouter()

    def resolve(provider: str, model: str, principal: Principal) -> CatalogEntry:
        entry = ops.lookup(f"{provider}/{model}")
        if entry is None:
            candidate = ops.lookup(model)
            entry = candidate if candidate is not None and candidate.provider == provider else None
        if entry is None:
            raise NotFound(
                f"Model '{model}' of provider '{provider}' not found.", param="model", code="model_not_found"
            )
        ensure_model_allowed(principal, entry.name)
        return entry

    def additional(body: dict[str, Any]) -> dict[str, Any]:
        extra = body.get("additional_params")
        if extra is None:
            return {}
        if not isinstance(extra, dict):
            raise InvalidRequest("'additional_params' must be an object.", param="additional_params")
        return {k: v for k, v in extra.items() if k not in ("model", "stream", "stream_options")}

    def options(body: dict[str, Any], payload: dict[str, Any]) -> int | None:
        temperature = body.get("temperature")
        if temperature is not None:
            if (
                not isinstance(temperature, int | float)
                or isinstance(temperature, bool)
                or not 0 <= temperature <= 2
            ):
                raise InvalidRequest("'temperature' must be a number between 0 and 2.", param="temperature")
            payload["temperature"] = temperature
        max_tokens = parse.optional_positive_int(body, "max_tokens")
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        return max_tokens

    async def start(request: Request, body: dict[str, Any] | None = None) -> tuple[Principal, dict[str, Any]]:
        request.state.envelope = INDOXROUTER
        principal = await ops.principal(request.headers)
        return principal, body if body is not None else parse.json_object(await request.body())

    async def respond(
        request: Request,
        principal: Principal,
        body: dict[str, Any],
        operation: Operation,
        payload: dict[str, Any],
        max_tokens: int | None,
        shape: Shape,
        prompt_estimate: int = 0,
    ) -> Response:
        provider = parse.required_string(body, "provider")
        model = parse.required_string(body, "model")
        entry = resolve(provider, model, principal)
        stream = parse.stream_flag(body) if operation in (Operation.CHAT, Operation.COMPLETION) else False
        call = Call(
            principal,
            entry,
            operation,
            request.url.path,
            payload,
            bound(operation, payload, ops.max_tokens(entry, max_tokens)),
            family="indoxrouter",
            batch=batch_requested(request.scope["query_string"]),
            stream=stream,
            route_limits=ops.route_limits.indoxrouter(principal),
        )
        request_id = request.scope["state"]["request_id"]
        if stream:
            flight = await ops.open_stream(call, request_id)
            assert flight.upstream is not None
            head = {"request_id": request_id, "provider": provider, "model": model}
            relay = IndoxRouterRelay(
                flight.upstream,
                head,
                lambda outcome: ops.settle(flight, outcome, Usage(prompt_estimate, outcome.content_chunks)),
                lambda result, text, reason: envelope(result, provider, model, text, finish_reason=reason),
            )
            response = RelayResponse(relay)
            response.headers[DEPLOYMENT_HEADER] = flight.result.deployment
            return response
        result = await ops.run(call, request_id)
        data, parts = shape(result.data)
        headers = {DEPLOYMENT_HEADER: result.deployment}
        return ORJSONResponse(envelope(result, provider, model, data, **parts), headers=headers)

    @router.post("/chat/completions")
    async def chat(request: Request) -> Response:
        principal, body = await start(request)
        messages = parse.messages(body)
        payload = {**additional(body), "messages": messages}
        max_tokens = options(body, payload)
        estimate = heuristic_prompt_tokens(messages)
        return await respond(
            request, principal, body, Operation.CHAT, payload, max_tokens, chat_shape, estimate
        )

    @router.post("/completions")
    async def completions(request: Request) -> Response:
        principal, body = await start(request)
        prompts = parse.text_or_texts(body, "prompt")
        payload = {**additional(body), "prompt": body["prompt"]}
        max_tokens = options(body, payload)
        estimate = heuristic_text_tokens(prompts)
        return await respond(
            request, principal, body, Operation.COMPLETION, payload, max_tokens, completion_shape, estimate
        )

    @router.post("/embeddings")
    async def embeddings(request: Request) -> Response:
        request.state.envelope = INDOXROUTER
        body = parse.json_object(await request.body())
        if is_sloughgpt_body(body):
            return await sloughgpt_embeddings(request, ops, body)
        principal, body = await start(request, body)
        parse.text_or_texts(body, "text")
        payload = {**additional(body), "input": body["text"]}
        return await respond(request, principal, body, Operation.EMBEDDING, payload, None, embedding_shape)

    @router.post("/images/generations")
    async def images(request: Request) -> Response:
        principal, body = await start(request)
        prompt = parse.required_string(body, "prompt")
        payload: dict[str, Any] = {**additional(body), "prompt": prompt, "n": parse.image_count(body)}
        size = body.get("size")
        if size is not None:
            if not isinstance(size, str) or not size:
                raise InvalidRequest("'size' must be a string such as '1024x1024'.", param="size")
            payload["size"] = size
        return await respond(request, principal, body, Operation.IMAGE, payload, None, image_shape)

    @router.get("/models/{provider}/{model}")
    async def model_detail(request: Request, provider: str, model: str) -> Response:
        request.state.envelope = INDOXROUTER
        principal = await ops.principal(request.headers, "GET")
        entry = resolve(provider, model, principal)
        return ORJSONResponse(
            model_info(entry, provider, model, ops.pricing.batch_multiplier_permille / 1000)
        )

    @router.get("/")
    async def health(request: Request) -> Response:
        return ORJSONResponse({"status": "ok", "version": version, "timestamp": iso(datetime.now(UTC))})

    return router
