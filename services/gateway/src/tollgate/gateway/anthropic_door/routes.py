"""POST /v1/messages and POST /v1/messages/count_tokens: Anthropic's Messages API in front of every
catalog model, for the official `anthropic` SDKs (key in `x-api-key`; `anthropic-version` is not
needed). A message runs through the same operations pipeline as a chat completion (key, model
grant, hold, upstream, usage event with endpoint /v1/messages); errors are Anthropic's envelope
(envelopes.anthropic_body)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from tollgate.common.http import ORJSONResponse
from tollgate.gateway.anthropic_door.answer import anthropic_message, message_shell
from tollgate.gateway.anthropic_door.request import estimated_input_tokens, parse_messages_request
from tollgate.gateway.anthropic_door.stream import MessagesStreamRelay
from tollgate.gateway.completions.streaming import RelayResponse, StreamOutcome
from tollgate.gateway.completions.tokens import heuristic_prompt_tokens
from tollgate.gateway.envelopes import ANTHROPIC
from tollgate.gateway.operations import requests as parse
from tollgate.gateway.operations.metering import bound
from tollgate.gateway.operations.openai_routes import COST_HEADER
from tollgate.gateway.operations.service import Operations, Result
from tollgate.gateway.pipeline import Call
from tollgate.gateway.pricing.cost import Operation, Usage
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER

ENDPOINT = "/v1/messages"
REQUEST_ID_HEADER = "request-id"  # where Anthropic's SDKs read a response's request id


def build_router(ops: Operations) -> APIRouter:
    router = APIRouter()

    @router.post(ENDPOINT)
    async def messages(request: Request) -> Response:
        request.state.envelope = ANTHROPIC
        principal = await ops.principal(request.headers)  # 401 / 403 come before the body's 400
        parsed = parse_messages_request(parse.json_object(await request.body()))
        entry = ops.model(parsed.model, principal)
        payload = parsed.payload
        call = Call(
            principal,
            entry,
            Operation.CHAT,
            ENDPOINT,
            payload,
            bound(Operation.CHAT, payload, parsed.max_tokens),
            family="anthropic",
            stream=parsed.stream,
        )
        request_id: str = request.scope["state"]["request_id"]
        if not parsed.stream:
            result = await ops.run(call, request_id)
            body = anthropic_message(
                result.data,
                request_id=request_id,
                model=entry.name,
                usage=result.usage,
                stop_sequences=parsed.stop_sequences,
            )
            headers = {
                REQUEST_ID_HEADER: request_id,
                COST_HEADER: str(result.cost_micros),
                DEPLOYMENT_HEADER: result.deployment,
            }
            return ORJSONResponse(body, headers=headers)
        prompt_estimate = heuristic_prompt_tokens(payload["messages"])
        flight = await ops.open_stream(call, request_id)
        assert flight.upstream is not None

        def settle(outcome: StreamOutcome) -> Result:
            return ops.settle(flight, outcome, Usage(prompt_estimate, outcome.content_chunks))

        shell = message_shell(request_id, entry.name, Usage(prompt_estimate, 0))
        response = RelayResponse(MessagesStreamRelay(flight.upstream, shell, parsed.stop_sequences, settle))
        response.headers[REQUEST_ID_HEADER] = request_id
        response.headers[DEPLOYMENT_HEADER] = flight.result.deployment
        return response

    @router.post(ENDPOINT + "/count_tokens")
    async def count_tokens(request: Request) -> Response:
        """No hold, no charge, no upstream call: the gateway's own estimate. Counting spends
        nothing, so a key with the `read` permission alone may count."""
        request.state.envelope = ANTHROPIC
        principal = await ops.principal(request.headers, "GET")
        parsed = parse_messages_request(parse.json_object(await request.body()), counting=True)
        ops.model(parsed.model, principal)  # an unknown or forbidden model is refused as for a message
        return ORJSONResponse({"input_tokens": estimated_input_tokens(parsed.payload)})

    return router
