"""SloughGPT's generation routes: `POST /generate` and `POST /generate/batch`, the same under `/v1`
(SloughGPT's path version). Each runs through the one pipeline (key, model grant, rate limits, hold,
upstream, usage event with the route as its endpoint) as a chat completion of the prompt; errors
are SloughGPT's envelope (`INVALID_PARAMETER` with `details`, `RATE_LIMITED`, ...).

A batch is one call per prompt, each with its own hold, usage event and charge (request id
`<id>-<index>`): every call is admitted before any is sent, so a batch the key cannot pay for (or
whose requests its rate limits refuse) is refused whole, holding and charging nothing; once sent,
each prompt is answered or fails on its own, and only answered prompts are charged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollgate.common.auth_client import Principal
from tollgate.common.errors import TollgateError
from tollgate.common.http import ORJSONResponse
from tollgate.common.money import micros_to_credits
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.completions.streaming import RelayResponse, StreamOutcome
from tollgate.gateway.completions.tokens import heuristic_prompt_tokens
from tollgate.gateway.envelopes import SLOUGHGPT, sloughgpt_body
from tollgate.gateway.operations import requests as parse
from tollgate.gateway.operations.metering import bound
from tollgate.gateway.operations.service import Operations, Result
from tollgate.gateway.pipeline import Call
from tollgate.gateway.pricing.cost import Operation, Usage
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER
from tollgate.gateway.sloughgpt_door import answer
from tollgate.gateway.sloughgpt_door.request import Generation, parse_batch, parse_generate
from tollgate.gateway.sloughgpt_door.stream import GenerationStreamRelay
from tollgate.gateway.sloughgpt_door.versions import negotiate

BATCH_CONCURRENCY = 8  # a batch's prompts in flight at once, so one batch cannot flood a provider


def build_router(
    ops: Operations,
    default_model: str = "",
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> APIRouter:
    """`default_model`: the catalog model a request without `model_id` gets (GATEWAY_SLOUGHGPT_
    DEFAULT_MODEL; the seed's own curl example names none); "" makes `model_id` required.
    `health`: the gateway's own checks (models in the catalog, Kafka), shown by GET /health."""
    router = APIRouter()

    async def health_check(request: Request) -> Response:
        """SloughGPT's health check: 200 while the gateway serves; `degraded` when Kafka is away
        (usage events wait in the spool, requests are still served and billed)."""
        request.state.envelope = SLOUGHGPT
        version = negotiate(request.headers)
        checks = await health() if health is not None else {}
        status = "degraded" if checks.get("kafka") == "down" else "healthy"
        now = answer.timestamp(datetime.now(UTC), "milliseconds")
        return ORJSONResponse({"status": status, "api_version": version, "timestamp": now, "checks": checks})

    def call_for(
        request: Request, principal: Principal, entry: CatalogEntry, gen: Generation, prompt: str
    ) -> Call:
        payload = gen.payload(prompt)
        max_tokens = ops.max_tokens(entry, gen.max_tokens)
        return Call(
            principal,
            entry,
            Operation.CHAT,
            request.url.path,
            payload,
            bound(Operation.CHAT, payload, max_tokens),
            family="sloughgpt",
            stream=gen.stream,
        )

    async def generate(request: Request) -> Response:
        request.state.envelope = SLOUGHGPT
        negotiate(request.headers)
        principal = await ops.principal(request.headers)  # 401 / 403 come before the body's 400
        gen = parse_generate(parse.json_object(await request.body()), default_model)
        entry = ops.model(gen.model_id, principal)
        call = call_for(request, principal, entry, gen, gen.prompts[0])
        request_id: str = request.scope["state"]["request_id"]
        if not gen.stream:
            result = await ops.run(call, request_id)
            body = answer.generation(
                request_id, gen.model_id, result.data, result.usage, result.cost_micros, result.started_at
            )
            return ORJSONResponse(body, headers={DEPLOYMENT_HEADER: result.deployment})
        prompt_estimate = heuristic_prompt_tokens(call.payload["messages"])
        flight = await ops.open_stream(call, request_id)
        assert flight.upstream is not None

        def settle(outcome: StreamOutcome) -> Result:
            return ops.settle(flight, outcome, Usage(prompt_estimate, outcome.content_chunks))

        shell = {
            "id": answer.generation_id(request_id),
            "object": "generation.chunk",
            "model_id": gen.model_id,
        }
        response = RelayResponse(GenerationStreamRelay(flight.upstream, shell, settle, request_id))
        response.headers[DEPLOYMENT_HEADER] = flight.result.deployment
        return response

    async def generate_batch(request: Request) -> Response:
        request.state.envelope = SLOUGHGPT
        negotiate(request.headers)
        principal = await ops.principal(request.headers)
        gen = parse_batch(parse.json_object(await request.body()), default_model)
        entry = ops.model(gen.model_id, principal)
        request_id: str = request.scope["state"]["request_id"]
        calls = [call_for(request, principal, entry, gen, prompt) for prompt in gen.prompts]
        admitted: list[Call] = []
        try:
            for index, call in enumerate(calls):
                await ops.admit(call, f"{request_id}-{index}")
                admitted.append(call)
        except BaseException:
            for call in admitted:  # refused whole: nothing held, nothing charged
                await ops.withdraw(call, "batch_refused")
            raise
        gate = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def complete(call: Call) -> Result:
            async with gate:
                return await ops.complete(call)

        outcomes = await asyncio.gather(*(complete(c) for c in calls), return_exceptions=True)
        results: list[dict[str, Any]] = []
        cost = 0
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, Result):
                text, reason = answer.answer_text(outcome.data)
                results.append(
                    {
                        "index": index,
                        "text": text,
                        "finish_reason": reason,
                        "usage": answer.usage_body(outcome.usage),
                        "cost": micros_to_credits(outcome.cost_micros),
                    }
                )
                cost += outcome.cost_micros
            elif isinstance(outcome, TollgateError):
                results.append({"index": index, **sloughgpt_body(request, outcome)})
            else:
                raise outcome
        if all("error" in r for r in results):  # nothing answered: the batch failed as its first did
            failed = outcomes[0]
            assert isinstance(failed, TollgateError)
            raise failed
        created = datetime.fromtimestamp(calls[0].started_ms / 1000, UTC)
        return ORJSONResponse(answer.batch(request_id, gen.model_id, results, cost, created))

    for prefix in ("", "/v1"):
        router.add_api_route(f"{prefix}/generate", generate, methods=["POST"])
        router.add_api_route(f"{prefix}/generate/batch", generate_batch, methods=["POST"])
        router.add_api_route(f"{prefix}/health", health_check, methods=["GET"])
    return router
