"""The hot path of POST /v1/chat/completions: validate, authenticate, price, hold, call, account.

Collaborators come in through the constructor (principal cache, catalog, billing, usage emitter),
so tests drive it with fakes and the real simulator app.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from starlette.requests import Request
from starlette.responses import Response

from tollgate.common.auth_client import Principal, api_key_from_headers
from tollgate.common.errors import NotFound, TollgateError, Unauthenticated, UpstreamError
from tollgate.contracts.v1 import billing_pb2
from tollgate.gateway.catalog.http1 import Http1Pool, UpstreamConnectionError
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.catalog.upstream import UpstreamRejected, post_upstream
from tollgate.gateway.completions.billing import place_hold
from tollgate.gateway.completions.hold_stock import HoldStock
from tollgate.gateway.completions.streaming import RelayResponse, SseRelay, StreamOutcome
from tollgate.gateway.completions.tokens import (
    heuristic_completion_tokens,
    heuristic_prompt_tokens,
    pessimistic_prompt_tokens,
    reported_usage,
)
from tollgate.gateway.completions.validation import ChatRequest, parse_chat_request
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.pricing.cost import (
    Operation,
    PricingPolicy,
    Usage,
    batch_requested,
    chat_cost,
    chat_hold,
)
from tollgate.gateway.principals.grants import ensure_model_allowed
from tollgate.gateway.principals.permissions import ensure_permitted
from tollgate.gateway.providers.base import Provider, UpstreamRequest
from tollgate.gateway.providers.registry import provider_for
from tollgate.gateway.routing.attempts import ChainFailed, Router
from tollgate.gateway.routing.chain import DEPLOYMENT_HEADER, Link, chain_hold, chain_of, take_fallbacks
from tollgate.gateway.routing.failures import AttemptFailed, refused, timed_out, unreachable
from tollgate.gateway.tasks import TaskSet
from tollgate.gateway.usage.events import OutgoingEvent, trace_headers, usage_event

ENDPOINT = "/v1/chat/completions"


class Principals(Protocol):
    async def get(self, api_key: str) -> Principal: ...


class Catalog(Protocol):
    def get(self, name: str) -> CatalogEntry | None: ...


class Billing(Protocol):
    async def reserve(
        self, principal: Principal, request_id: str, max_cost_micros: int, model: str
    ) -> billing_pb2.ReserveResponse: ...
    async def release(self, org_id: str, hold_id: str) -> bool: ...


class Emitter(Protocol):
    """usage/recorder.py: `answered` marks a charged request's hold and queues its event; `emit`
    queues the event of a request that charged nothing."""

    def answered(self, event: OutgoingEvent) -> Awaitable[None] | None: ...
    def emit(self, event: OutgoingEvent) -> None: ...


@dataclass(slots=True)
class _Call:
    """What one request accumulates for its usage event."""

    request_id: str
    principal: Principal
    entry: CatalogEntry
    chat: ChatRequest
    hold_id: str
    started: float
    started_ms: int
    headers: list[tuple[str, bytes]]
    batch: bool
    provider: Provider  # the upstream's dialect (providers/)
    upstream: UpstreamRequest  # the provider's request, built before the hold
    chain: list[Link] | None = None  # the model and its fallbacks (routing/); None: no fallbacks
    aborted: bool = False  # the hold went back uncharged


class ChatCompletions:
    def __init__(
        self,
        principals: Principals,
        catalog: Catalog,
        billing: Billing,
        emitter: Emitter,
        metrics: GatewayMetrics,
        *,
        upstream_timeout_s: float = 60.0,
        default_max_tokens: int = 4096,
        pricing: PricingPolicy | None = None,
        hold_stock: HoldStock | None = None,
        router: Router | None = None,
    ) -> None:
        self._principals = principals
        self._router = router if router is not None else Router()
        self._stock = hold_stock if hold_stock is not None and hold_stock.enabled else None
        self._catalog = catalog
        self._billing = billing
        self._emitter = emitter
        self._metrics = metrics
        self._timeout = httpx.Timeout(upstream_timeout_s)
        self._timeout_s = upstream_timeout_s
        self._default_max_tokens = default_max_tokens
        self._pricing = pricing or PricingPolicy()
        self._tracer = trace.get_tracer("tollgate.gateway")
        self._tasks = TaskSet()

    async def handle(self, request: Request) -> Response:
        try:
            response = await self._handle(request)
        except TollgateError as exc:
            self._metrics.chat_requests.labels(str(exc.status_code)).inc()
            raise
        self._metrics.chat_requests.labels(str(response.status_code)).inc()
        return response

    async def _handle(self, request: Request) -> Response:
        started = time.perf_counter()
        started_ms = int(time.time() * 1000)
        # who is asking comes first (401, then 403 permission_denied), as OpenAI answers; then the body
        headers = request.headers
        api_key = api_key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
        if api_key is None:
            raise Unauthenticated("You didn't provide an API key (Authorization: Bearer <key>).")
        principal = await self._principals.get(api_key)
        ensure_permitted(principal, "POST")
        chat = parse_chat_request(await request.body())
        entry = self._catalog.get(chat.model)
        if entry is None:
            raise NotFound(f"The model '{chat.model}' does not exist.", param="model", code="model_not_found")
        ensure_model_allowed(principal, entry.name)  # 403 before any hold or upstream call
        payload = chat.payload
        chain = None
        if entry.routed or "fallbacks" in payload or "models" in payload:
            requested = take_fallbacks(payload, entry.name)  # 400 / 403 naming a fallback, no hold yet
            chain = chain_of(entry, requested, self._catalog, principal, _serves_chat)
        provider = provider_for(entry.provider)
        # built before the hold: a request the provider's dialect cannot express is a 400, nothing held
        links = self._links(chain, chat) if chain is not None else None
        upstream = provider.request(entry, Operation.CHAT, payload, stream=chat.stream)
        request_id: str = request.scope["state"]["request_id"]
        prompt_bound = pessimistic_prompt_tokens(chat.messages, payload.get("tools"))
        query = request.scope["query_string"]
        batch = batch_requested(query) if query else False
        if chain is None:
            max_tokens = chat.max_tokens or entry.max_tokens_default or self._default_max_tokens
            max_cost = chat_hold(entry, prompt_bound, max_tokens, self._pricing, batch)
        else:  # one hold for the chain: the dearest of its models
            max_cost = chain_hold(chain, lambda e: self._hold_price(e, chat, prompt_bound, batch))
        hold_id = await self._reserve(principal, request_id, max_cost, entry.name)
        call = _Call(
            request_id,
            principal,
            entry,
            chat,
            hold_id,
            started,
            started_ms,
            trace_headers(),
            batch,
            provider,
            upstream,
            None if links is None else [Link(entry, provider, upstream), *links],
        )
        if chat.stream:
            return await self._stream(call)
        return await self._complete(call)

    async def _reserve(self, principal: Principal, request_id: str, max_cost: int, model: str) -> str:
        stock = self._stock
        if stock is not None and (stocked := stock.take(principal, max_cost, model)) is not None:
            return stocked
        reply = await place_hold(self._billing, self._metrics, principal, request_id, max_cost, model)
        if stock is not None:
            stock.learn(principal, max_cost, model, reply.stockable)
        return reply.hold_id or request_id

    def _hold_price(self, entry: CatalogEntry, chat: ChatRequest, prompt_bound: int, batch: bool) -> int:
        max_tokens = chat.max_tokens or entry.max_tokens_default or self._default_max_tokens
        return chat_hold(entry, prompt_bound, max_tokens, self._pricing, batch)

    @staticmethod
    def _links(chain: list[CatalogEntry], chat: ChatRequest) -> list[Link]:
        """The fallbacks' upstream requests (the primary's is built by the caller), each from its own
        copy of the body: a provider may change the body it is given."""
        links = []
        for entry in chain[1:]:
            provider = provider_for(entry.provider)
            upstream = provider.request(entry, Operation.CHAT, dict(chat.payload), stream=chat.stream)
            links.append(Link(entry, provider, upstream))
        return links

    async def _send(self, call: _Call, stream: bool, timeout_s: float | None = None) -> httpx.Response:
        url, content, headers = call.upstream  # post_upstream injects the trace context in its span
        return await post_upstream(
            call.entry,
            url,
            content,
            headers,
            stream=stream,
            timeouts=self._timeout if timeout_s is None else httpx.Timeout(timeout_s),
            tracer=self._tracer,
            span_name="upstream.chat_completions",
            metrics=self._metrics,
        )

    async def _post(self, call: _Call, lean: Http1Pool, timeout_s: float) -> bytes:
        """Non-streamed call over the lean HTTP/1.1 client (plain-http upstreams)."""
        with self._upstream_span(call):
            url, content, headers = call.upstream
            propagate.inject(headers)
            began = time.perf_counter()
            try:
                response = await lean.post(url, content, headers, timeout_s)
            except TimeoutError:
                raise timed_out() from None
            except UpstreamConnectionError:
                raise unreachable() from None
            self._metrics.upstream_latency.labels(call.entry.provider).observe(time.perf_counter() - began)
        if response.status_code != 200:
            raise refused(response.status_code, response.content)
        return response.content

    def _upstream_span(self, call: _Call) -> AbstractContextManager[object]:
        return self._tracer.start_as_current_span(
            "upstream.chat_completions",
            kind=SpanKind.CLIENT,
            attributes={"tollgate.model": call.entry.name, "tollgate.provider": call.entry.provider},
        )

    async def _fetch(self, call: _Call, timeout_s: float | None = None) -> bytes:
        """One attempt at a non-streamed answer from call.entry: AttemptFailed / UpstreamRejected."""
        lean = call.entry.lean
        if lean is not None:
            return await self._post(call, lean, self._timeout_s if timeout_s is None else timeout_s)
        return (await self._send(call, False, timeout_s)).content

    async def _routed(self, call: _Call, stream: bool, failed: AttemptFailed | None) -> Any:
        """Retries and fallbacks (routing/): the answer of the first link that gives one (bytes, or a
        stream's open response); `call` is left on the link that served, so the usage event and the
        price are that model's. `failed`: the fast path's one attempt, which failed so."""
        chain = call.chain or [Link(call.entry, call.provider, call.upstream)]

        async def attempt(link: Link, timeout_s: float) -> Any:
            call.entry, call.provider, call.upstream = link
            if stream:
                return await self._send(call, True, timeout_s)
            return await self._fetch(call, timeout_s)

        left = self._timeout_s - (time.perf_counter() - call.started)  # one deadline for every attempt
        try:
            _, answer = await self._router.run(chain, attempt, left, failed)
        except ChainFailed as exhausted:
            error = exhausted.error()
            if not isinstance(error, UpstreamRejected):  # a 429 passed on is the last model's, in its dialect
                call.entry, call.provider, call.upstream = chain[0]  # a failed request is its model's
            await self._abort(call, exhausted.last.status)
            raise error from None
        return answer

    async def _complete(self, call: _Call) -> Response:
        try:
            if call.chain is not None:
                content = await self._routed(call, False, None)
            else:
                try:
                    content = await self._fetch(call)
                    self._router.succeeded(call.entry.name)
                except AttemptFailed as failed:  # retries start from here, off the fast path
                    content = await self._routed(call, False, failed)
        except UpstreamRejected as passed:
            return await self._rejected(call, passed)
        try:
            data = orjson.loads(content)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            data = call.provider.answer(Operation.CHAT, data)
        except ValueError:
            await self._abort(call, "upstream_error")
            raise UpstreamError("The upstream model answered with invalid JSON.") from None
        usage = reported_usage(data.get("usage"))
        estimated = usage is None
        if usage is None:
            usage = Usage(heuristic_prompt_tokens(call.chat.messages), heuristic_completion_tokens(data))
            data["usage"] = {
                "prompt_tokens": usage.tokens_in,
                "completion_tokens": usage.tokens_out,
                "total_tokens": usage.tokens_in + usage.tokens_out,
            }
        data["model"] = call.entry.name
        body = orjson.dumps(data)
        marked = self._account(call, "ok", usage, estimated)
        if marked is not None:
            await marked  # the hold's mark leaves before the answer does (usage/marks.py)
        headers = {DEPLOYMENT_HEADER: call.entry.deployment}
        return Response(body, media_type="application/json", headers=headers)

    async def _stream(self, call: _Call) -> Response:
        # a stream fails over only before its first byte: while the upstream's status is not 200
        try:
            if call.chain is not None:
                opened = await self._routed(call, True, None)
            else:
                try:
                    opened = await self._send(call, True)
                    self._router.succeeded(call.entry.name)
                except AttemptFailed as failed:
                    opened = await self._routed(call, True, failed)
        except UpstreamRejected as passed:
            return await self._rejected(call, passed)
        upstream = call.provider.stream(Operation.CHAT, opened)

        def finished(outcome: StreamOutcome) -> Awaitable[None] | None:
            nothing_delivered = outcome.usage is None and not outcome.content_chunks
            if outcome.status != "client_disconnected" and nothing_delivered:
                # the upstream failed before its first token: nothing was delivered, nothing is charged
                self._tasks.spawn(self._abort(call, outcome.status))
                return None
            usage = outcome.usage
            estimated = usage is None
            if usage is None:
                usage = Usage(heuristic_prompt_tokens(call.chat.messages), outcome.content_chunks)
            return self._account(call, outcome.status, usage, estimated)

        relay = SseRelay(
            upstream,
            call.entry.name,
            call.chat.include_usage,
            lambda: heuristic_prompt_tokens(call.chat.messages),
            finished,
        )
        response = RelayResponse(relay)
        response.headers[DEPLOYMENT_HEADER] = call.entry.deployment
        return response

    async def _rejected(self, call: _Call, passed: UpstreamRejected) -> Response:
        """A refusal the caller can fix, passed on in OpenAI's envelope (the provider's dialect mapped)."""
        await self._abort(call, "upstream_error")
        body = call.provider.error_body(passed.status_code, passed.body)
        return Response(body, status_code=passed.status_code, media_type="application/json")

    async def _abort(self, call: _Call, status: str) -> None:
        """The upstream failed: nothing is charged, the hold goes back, analytics still see it (once)."""
        if call.aborted:
            return
        call.aborted = True
        await self._billing.release(call.principal.org_id, call.hold_id)
        self._account(call, status, Usage(), False, charge=False)

    def _account(
        self, call: _Call, status: str, usage: Usage, estimated: bool, *, charge: bool = True
    ) -> Awaitable[None] | None:
        """Emits the usage event; a charged request's hold is marked too (await the result, when
        there is one, before the answer's last bytes)."""
        entry = call.entry
        cost = chat_cost(entry, usage, self._pricing, call.batch) if charge else 0
        finished_ms = int(time.time() * 1000)
        event = usage_event(
            request_id=call.request_id,
            principal=call.principal,
            model=entry.name,
            provider=entry.provider,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            cost_micros=cost,
            status=status,
            hold_id=call.hold_id,
            started_at_unix_ms=call.started_ms,
            finished_at_unix_ms=finished_ms,
            latency_ms=int((time.perf_counter() - call.started) * 1000),
            endpoint=ENDPOINT,
            stream=call.chat.stream,
            tokens_estimated=estimated,
            headers=call.headers,
            operation=Operation.CHAT,
            batch=call.batch,
            token_classes=usage,
            requested_model=call.chat.model if call.chat.model != entry.name else "",
            deployment=entry.deployment,
        )
        if not charge:
            self._emitter.emit(event)
            return None
        return self._emitter.answered(event)


def _serves_chat(entry: CatalogEntry) -> bool:
    return provider_for(entry.provider).supports(Operation.CHAT)
