"""OpenAI's /v1/completions, /v1/embeddings and /v1/images/generations (the Bedrock-style gateway
lists embeddings), priced by their modes; errors in OpenAI's envelope. Each answer carries its cost
in micro-credits in the `x-tollgate-cost-micros` header (streams: in the usage event only)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollgate.common.http import ORJSONResponse
from tollgate.gateway.checks.sampling import check_sampling
from tollgate.gateway.completions.streaming import RelayResponse, SseRelay, StreamOutcome
from tollgate.gateway.operations import requests as parse
from tollgate.gateway.operations.metering import bound, heuristic_text_tokens
from tollgate.gateway.operations.service import Operations, Result
from tollgate.gateway.pipeline import Call
from tollgate.gateway.pricing.cost import Operation, Usage, batch_requested
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER

COST_HEADER = "x-tollgate-cost-micros"


def _answer(result: Result, data: dict[str, Any]) -> Response:
    headers = {COST_HEADER: str(result.cost_micros), DEPLOYMENT_HEADER: result.deployment}
    return ORJSONResponse(data, headers=headers)


def build_router(ops: Operations) -> APIRouter:
    router = APIRouter()

    async def prepare(
        request: Request, operation: Operation, payload: dict[str, Any], max_tokens: int | None
    ) -> Call:
        name = parse.required_string(payload, "model")
        batch = batch_requested(request.scope["query_string"])
        principal = await ops.principal(request.headers)
        entry = ops.model(name, principal)
        limit = ops.max_tokens(entry, max_tokens)
        return Call(
            principal,
            entry,
            operation,
            request.url.path,
            payload,
            bound(operation, payload, limit),
            batch=batch,
            stream=parse.stream_flag(payload),
        )

    @router.post("/v1/completions")
    async def completions(request: Request) -> Response:
        payload = parse.json_object(await request.body())
        prompts = parse.text_or_texts(payload, "prompt")
        max_tokens = parse.optional_positive_int(payload, "max_tokens")
        wants_usage = parse.include_usage(payload)
        check_sampling(payload)
        call = await prepare(request, Operation.COMPLETION, payload, max_tokens)
        request_id = request.scope["state"]["request_id"]
        if call.stream:
            flight = await ops.open_stream(call, request_id)
            assert flight.upstream is not None
            prompt_estimate = heuristic_text_tokens(prompts)

            def finished(outcome: StreamOutcome) -> Awaitable[None] | None:
                return ops.settle(flight, outcome, Usage(prompt_estimate, outcome.content_chunks)).marking

            relay = SseRelay(flight.upstream, call.entry.name, wants_usage, lambda: prompt_estimate, finished)
            response = RelayResponse(relay)
            response.headers[DEPLOYMENT_HEADER] = flight.result.deployment
            return response
        result = await ops.run(call, request_id)
        data = result.data
        data["model"] = call.entry.name
        if result.estimated:
            usage = result.usage
            data["usage"] = {
                "prompt_tokens": usage.tokens_in,
                "completion_tokens": usage.tokens_out,
                "total_tokens": usage.tokens_in + usage.tokens_out,
            }
        return _answer(result, data)

    @router.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        payload = parse.json_object(await request.body())
        parse.text_or_texts(payload, "input")
        payload.pop("stream", None)
        call = await prepare(request, Operation.EMBEDDING, payload, None)
        result = await ops.run(call, request.scope["state"]["request_id"])
        data = result.data
        data["model"] = call.entry.name
        data["usage"] = {"prompt_tokens": result.usage.tokens_in, "total_tokens": result.usage.tokens_in}
        return _answer(result, data)

    @router.post("/v1/images/generations")
    async def images(request: Request) -> Response:
        payload = parse.json_object(await request.body())
        parse.required_string(payload, "prompt")
        parse.image_count(payload)
        payload.pop("stream", None)
        call = await prepare(request, Operation.IMAGE, payload, None)
        result = await ops.run(call, request.scope["state"]["request_id"])
        return _answer(result, result.data)

    return router
