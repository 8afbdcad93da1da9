"""POST /v1/responses: OpenAI's Responses API in front of every catalog chat model, for the official
`openai` SDKs' `client.responses`. A response runs through the same operations pipeline as a chat
completion (key, model grant, hold, upstream, usage event with endpoint /v1/responses); errors are
OpenAI's envelope, as on the rest of /v1/*."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollgate.common.http import ORJSONResponse
from tollgate.gateway.completions.streaming import RelayResponse, StreamOutcome
from tollgate.gateway.completions.tokens import heuristic_prompt_tokens
from tollgate.gateway.operations import requests as parse
from tollgate.gateway.operations.metering import bound
from tollgate.gateway.operations.openai_routes import COST_HEADER
from tollgate.gateway.operations.service import Operations, Result
from tollgate.gateway.pipeline import Call
from tollgate.gateway.pricing.cost import Operation, Usage
from tollgate.gateway.responses_door.answer import response_shell, responses_answer
from tollgate.gateway.responses_door.request import parse_responses_request
from tollgate.gateway.responses_door.stream import ResponsesStreamRelay
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER

ENDPOINT = "/v1/responses"


def build_router(ops: Operations) -> APIRouter:
    router = APIRouter()

    @router.post(ENDPOINT)
    async def responses(request: Request) -> Response:
        principal = await ops.principal(request.headers)  # 401 / 403 come before the body's 400
        parsed = parse_responses_request(parse.json_object(await request.body()))
        entry = ops.model(parsed.model, principal)
        payload = parsed.payload
        call = Call(
            principal,
            entry,
            Operation.CHAT,
            ENDPOINT,
            payload,
            # held over the model's default when max_output_tokens is not given, as chat is
            bound(Operation.CHAT, payload, ops.max_tokens(entry, parsed.max_output_tokens)),
            family="responses",
            stream=parsed.stream,
        )
        request_id: str = request.scope["state"]["request_id"]
        if not parsed.stream:
            result = await ops.run(call, request_id)
            shell = response_shell(request_id, entry.name, int(result.started_at.timestamp()), parsed.echo)
            body = responses_answer(result.data, shell=shell, request_id=request_id, usage=result.usage)
            headers = {COST_HEADER: str(result.cost_micros), DEPLOYMENT_HEADER: result.deployment}
            return ORJSONResponse(body, headers=headers)
        prompt_estimate = heuristic_prompt_tokens(payload["messages"])
        flight = await ops.open_stream(call, request_id)
        assert flight.upstream is not None

        def settle(outcome: StreamOutcome) -> Result:
            return ops.settle(flight, outcome, Usage(prompt_estimate, outcome.content_chunks))

        created_at = int(flight.result.started_at.timestamp())
        shell = response_shell(request_id, entry.name, created_at, parsed.echo)
        response = RelayResponse(ResponsesStreamRelay(flight.upstream, shell, request_id, settle))
        response.headers[DEPLOYMENT_HEADER] = flight.result.deployment
        return response

    return router
