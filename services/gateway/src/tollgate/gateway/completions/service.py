"""POST /v1/chat/completions, the hot path: parse the body, run it through the pipeline
(gateway/pipeline/) with chat's speed features on (the hold stock; the lean HTTP/1.1 client for
models that have one), shape the answer. Every allocation and clock read here is per request."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollgate.common.errors import TollgateError
from tollgate.gateway.completions.streaming import RelayResponse, SseRelay, StreamOutcome
from tollgate.gateway.completions.tokens import (
    heuristic_completion_tokens,
    heuristic_prompt_tokens,
    pessimistic_prompt_tokens,
    reported_usage,
)
from tollgate.gateway.completions.validation import ChatRequest, parse_chat_request
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.pipeline import Call, Pipeline, UpstreamRefused
from tollgate.gateway.pricing.cost import Operation, Usage, batch_requested
from tollgate.gateway.records.recorder import SESSION_HEADER, THREAD_HEADER, ChatRecorder, pending_record
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER

ENDPOINT = "/v1/chat/completions"
SPAN = "upstream.chat_completions"


class ChatCompletions:
    def __init__(
        self, pipeline: Pipeline, metrics: GatewayMetrics, recorder: ChatRecorder | None = None
    ) -> None:
        self._pipeline = pipeline
        self._metrics = metrics
        self._recorder = recorder  # chat records (docs/chat-records.md); None: never recorded
        self._answered: dict[int, Any] = {}  # gateway_chat_requests_total's child by status

    async def handle(self, request: Request) -> Response:
        try:
            response = await self._handle(request)
        except TollgateError as exc:
            self._count(exc.status_code)
            raise
        self._count(response.status_code)
        return response

    def _count(self, status: int) -> None:
        counter = self._answered.get(status)
        if counter is None:
            counter = self._answered[status] = self._metrics.chat_requests.labels(str(status))
        counter.inc()

    async def _handle(self, request: Request) -> Response:
        started = time.perf_counter()
        started_ms = int(time.time() * 1000)
        pipeline = self._pipeline
        # who is asking comes first (401, then 403 permission_denied), as OpenAI answers; then the body
        principal = await pipeline.principal(request.headers)
        chat = parse_chat_request(await request.body())
        entry = pipeline.model(chat.model, principal)  # 404, then 403 before any hold or upstream call
        payload = chat.payload
        query = request.scope["query_string"]
        # positional: keywords would cost this path about half a microsecond (the fields, in order)
        call = Call(
            principal,
            entry,
            Operation.CHAT,
            ENDPOINT,
            payload,
            None,  # bound: the prompt's, with each model's max tokens (the dearest of a chain is held)
            "",  # family: counted by HTTP status in gateway_chat_requests_total instead
            batch_requested(query) if query else False,
            False,  # flat
            chat.stream,
            pessimistic_prompt_tokens(chat.messages, payload.get("tools")),
            chat.max_tokens,
            True,  # owned: the parsed body goes up as it is when one model serves
            SPAN,
            request.scope["state"]["request_id"],
            started,
            started_ms,
        )
        await pipeline.admit(call, stock=True)
        # chat records: only for organisations that record (one attribute test otherwise)
        record = self._recorder is not None and principal.records_chats
        session = (
            (request.headers.get(SESSION_HEADER, ""), request.headers.get(THREAD_HEADER, ""))
            if record
            else None
        )
        try:
            if chat.stream:
                return await self._stream(call, chat, session)
            return await self._complete(call, chat, session)
        except UpstreamRefused as refused:  # a refusal the caller can fix, in OpenAI's envelope
            body, status = refused.openai_body(), refused.status_code
            return Response(body, status_code=status, media_type="application/json")

    def _record(
        self, call: Call, chat: ChatRequest, session: tuple[str, str], status: str, answer: str
    ) -> None:
        assert self._recorder is not None
        usage = call.usage
        self._recorder.record(
            pending_record(
                request_id=call.request_id,
                principal=call.principal,
                session_id=session[0],
                thread_id=session[1],
                model=call.entry.name,
                stream=chat.stream,
                status=status,
                tokens_in=usage.tokens_in,
                tokens_out=usage.tokens_out,
                messages=chat.messages,
                answer=answer,
                endpoint=ENDPOINT,
            )
        )

    async def _complete(self, call: Call, chat: ChatRequest, session: tuple[str, str] | None) -> Response:
        data = await self._pipeline.answer(call)
        usage = reported_usage(data.get("usage"))
        estimated = usage is None
        if usage is None:
            usage = Usage(heuristic_prompt_tokens(chat.messages), heuristic_completion_tokens(data))
            data["usage"] = {
                "prompt_tokens": usage.tokens_in,
                "completion_tokens": usage.tokens_out,
                "total_tokens": usage.tokens_in + usage.tokens_out,
            }
        entry = call.entry
        data["model"] = entry.name
        body = orjson.dumps(data)
        marked = self._pipeline.charge(call, "ok", usage, estimated)
        if session is not None:
            self._record(call, chat, session, "ok", _answer_text(data))
        if marked is not None:
            await marked  # the hold's mark leaves before the answer does (usage/marks.py)
        return Response(body, media_type="application/json", headers={DEPLOYMENT_HEADER: entry.deployment})

    async def _stream(self, call: Call, chat: ChatRequest, session: tuple[str, str] | None) -> Response:
        pipeline = self._pipeline
        upstream = await pipeline.open(call)
        messages = chat.messages

        def finished(outcome: StreamOutcome) -> Awaitable[None] | None:
            estimate = heuristic_prompt_tokens(messages) if outcome.usage is None else 0
            marked = pipeline.settle(call, outcome, estimate)
            if session is not None:
                self._record(call, chat, session, outcome.status, outcome.text)
            return marked

        relay = SseRelay(
            upstream,
            call.entry.name,
            chat.include_usage,
            lambda: heuristic_prompt_tokens(messages),
            finished,
            session is not None,
        )
        response = RelayResponse(relay)
        response.headers[DEPLOYMENT_HEADER] = call.entry.deployment
        return response


def _answer_text(data: dict[str, object]) -> str:
    """The first choice's message content (a tool-calling answer may have none)."""
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]
    return ""
