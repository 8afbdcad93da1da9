"""The priced operations besides the /v1/chat/completions fast path: text completions,
embeddings, image generations, and the seed routes' chat (seed 002, seed 003).

One pipeline for all of them: authenticate, resolve the model, check the grant, price the
request's bound and hold it (billing refuses before any upstream call), call the upstream,
meter what it used, price that (tollgate.gateway.pricing.cost), emit the usage event. Routes
only parse their seed's request and shape the result in their seed's envelope.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import orjson
from opentelemetry import trace

from tollgate.common.auth_client import Principal, api_key_from_headers
from tollgate.common.errors import InvalidRequest, NotFound, TollgateError, Unauthenticated, UpstreamError
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.catalog.upstream import UpstreamRejected, post_upstream
from tollgate.gateway.completions.billing import Reserver, place_hold
from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.operations.metering import metered
from tollgate.gateway.pricing.cost import (
    Operation,
    PricingPolicy,
    Usage,
    cost_micros,
    flat_request_cost,
    hold_micros,
)
from tollgate.gateway.principals.grants import ensure_model_allowed
from tollgate.gateway.principals.permissions import ensure_permitted
from tollgate.gateway.providers.base import Provider, UpstreamRequest, UpstreamStream
from tollgate.gateway.providers.registry import provider_for
from tollgate.gateway.routing.attempts import ChainFailed, Router
from tollgate.gateway.routing.chain import Link, chain_hold, chain_of, take_fallbacks
from tollgate.gateway.routing.failures import AttemptFailed
from tollgate.gateway.tasks import TaskSet
from tollgate.gateway.usage.events import OutgoingEvent, trace_headers, usage_event


class Principals(Protocol):
    async def get(self, api_key: str) -> Principal: ...


class Catalog(Protocol):
    def get(self, name: str) -> CatalogEntry | None: ...
    def entries(self) -> list[CatalogEntry]: ...


class Billing(Reserver, Protocol):
    async def release(self, org_id: str, hold_id: str) -> bool: ...


class Emitter(Protocol):
    """usage/recorder.py: `answered` marks a charged request's hold and queues its event; `emit`
    queues the event of a request that charged nothing."""

    def answered(self, event: OutgoingEvent) -> Awaitable[None] | None: ...
    def emit(self, event: OutgoingEvent) -> None: ...


class UpstreamRefused(TollgateError):
    """The provider refused the request for a reason the caller can fix (its 4xx passes through)."""

    error_type = "invalid_request_error"
    code = "provider_error"

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(slots=True)
class OperationCall:
    principal: Principal
    entry: CatalogEntry
    operation: Operation
    endpoint: str  # our route, recorded in the usage event
    payload: dict[str, Any]  # the upstream body (its model is set to the provider's name)
    bound: Usage  # the most it may use: the hold is priced over it
    family: str = "openai"  # route family, a metrics label: openai | seed002 | seed003
    batch: bool = False
    flat: bool = False  # seed 002: the flat per-request price; tokens are not priced
    stream: bool = False


@dataclass(slots=True)
class Result:
    request_id: str
    data: dict[str, Any]
    usage: Usage
    estimated: bool
    cost_micros: int
    max_cost_micros: int
    available_micros: int  # spendable before this request's hold
    started_at: datetime
    latency_s: float = 0.0
    deployment: str = ""  # the catalog model that served (routing/): x-tollgate-deployment
    # the hold's mark being sent (usage/marks.py): awaited before the answer's last bytes leave
    marking: Awaitable[None] | None = None

    @property
    def remaining_micros(self) -> int:
        """What stays spendable once this request is charged (other requests' holds aside)."""
        return max(self.available_micros - self.cost_micros, 0)


@dataclass(slots=True)
class Flight:
    """One request between its hold and its usage event; a stream's `settle` accounts it once."""

    call: OperationCall
    result: Result
    hold_id: str
    started: float
    started_ms: int
    headers: list[tuple[str, bytes]]
    provider: Provider  # the upstream's dialect (providers/)
    request: UpstreamRequest  # built before the hold
    upstream: UpstreamStream | None = None  # a stream's OpenAI chunks
    settled: bool = False
    chain: list[Link] | None = None  # the model and its fallbacks (routing/); None: no fallbacks


class Operations:
    def __init__(
        self,
        principals: Principals,
        catalog: Catalog,
        billing: Billing,
        emitter: Emitter,
        metrics: GatewayMetrics,
        *,
        pricing: PricingPolicy,
        upstream_timeout_s: float = 60.0,
        default_max_tokens: int = 4096,
        router: Router | None = None,
    ) -> None:
        self._principals = principals
        self._router = router if router is not None else Router()
        self._timeout_s = upstream_timeout_s
        self._catalog = catalog
        self._billing = billing
        self._emitter = emitter
        self._metrics = metrics
        self.pricing = pricing
        self._timeout = httpx.Timeout(upstream_timeout_s)
        self.default_max_tokens = default_max_tokens
        self._tracer = trace.get_tracer("tollgate.gateway")
        self._tasks = TaskSet()

    # -- resolving ---------------------------------------------------------------------------------

    async def principal(self, headers: Mapping[str, str], method: str = "POST") -> Principal:
        """The caller's key (401 without a valid one) and its read / write permission (403)."""
        api_key = api_key_from_headers(headers.get("authorization"), headers.get("x-api-key"))
        if api_key is None:
            raise Unauthenticated("You didn't provide an API key (Authorization: Bearer <key>).")
        principal = await self._principals.get(api_key)
        ensure_permitted(principal, method)
        return principal

    def lookup(self, name: str) -> CatalogEntry | None:
        return self._catalog.get(name)

    def model(self, name: str, principal: Principal | None = None) -> CatalogEntry:
        entry = self._catalog.get(name)
        if entry is None:
            raise NotFound(f"The model '{name}' does not exist.", param="model", code="model_not_found")
        if principal is not None:
            ensure_model_allowed(principal, entry.name)
        return entry

    def entries(self) -> list[CatalogEntry]:
        return self._catalog.entries()

    def max_tokens(self, entry: CatalogEntry, requested: int | None) -> int:
        return requested or entry.max_tokens_default or self.default_max_tokens

    # -- pricing -----------------------------------------------------------------------------------

    def price(self, call: OperationCall, usage: Usage) -> int:
        if call.flat:
            return flat_request_cost(call.entry, self.pricing, batch=call.batch)
        return cost_micros(call.entry, call.operation, usage, self.pricing, batch=call.batch)

    def hold_price(self, call: OperationCall, entry: CatalogEntry | None = None) -> int:
        """The hold: the cost over the call's bound, token classes at their dearest price (priced with
        `entry`'s prices when given: a fallback's)."""
        entry = entry or call.entry
        if call.flat:
            return flat_request_cost(entry, self.pricing, batch=call.batch)
        return hold_micros(entry, call.operation, call.bound, self.pricing, batch=call.batch)

    # -- calling -----------------------------------------------------------------------------------

    async def run(self, call: OperationCall, request_id: str) -> Result:
        """A non-streamed call, answered in full; raises the refusal / upstream errors."""
        flight = await self._hold(call, request_id, stream=False)
        upstream = await self._upstream(flight, stream=False)
        try:
            data = orjson.loads(upstream.content)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            data = flight.provider.answer(call.operation, data)
        except ValueError:
            await self._fail(flight, "upstream_error")
            raise UpstreamError("The upstream model answered with invalid JSON.") from None
        result = flight.result
        result.data = data
        result.usage, result.estimated = metered(call.operation, call.payload, data)
        self._settle(flight, "ok")
        if result.marking is not None:
            await result.marking
        return result

    async def open_stream(self, call: OperationCall, request_id: str) -> Flight:
        flight = await self._hold(call, request_id, stream=True)
        # a stream fails over only before its first byte: while the upstream's status is not 200
        opened = await self._upstream(flight, stream=True)
        flight.upstream = flight.provider.stream(call.operation, opened)
        return flight

    def settle(self, flight: Flight, outcome: StreamOutcome, estimate: Usage) -> Result:
        """Accounts a stream once, however it ended: what was generated is billed."""
        if flight.settled:
            return flight.result
        if outcome.status != "client_disconnected" and outcome.usage is None and not outcome.content_chunks:
            # the upstream failed before its first token: nothing was delivered, nothing is charged
            self._close_uncharged(flight, outcome.status)
            self._tasks.spawn(self._billing.release(flight.call.principal.org_id, flight.hold_id))
        else:
            usage = outcome.usage if outcome.usage is not None else estimate
            flight.result.usage, flight.result.estimated = usage, outcome.usage is None
            self._settle(flight, outcome.status)
        return flight.result

    def _settle(self, flight: Flight, status: str) -> None:
        flight.settled = True
        result = flight.result
        result.cost_micros = self.price(flight.call, result.usage)
        result.latency_s = time.perf_counter() - flight.started
        result.marking = self._emit(flight, status, charged=True)

    async def _hold(self, call: OperationCall, request_id: str, *, stream: bool) -> Flight:
        started, started_ms = time.perf_counter(), int(time.time() * 1000)
        entry, chain = call.entry, None
        if entry.routed or "fallbacks" in call.payload or "models" in call.payload:
            requested = take_fallbacks(call.payload, entry.name)  # 400 / 403 naming a fallback, no hold
            chain = chain_of(entry, requested, self._catalog, call.principal, _serving(call.operation))
        # the upstream request is built first: what its provider cannot take is a 400, nothing held
        provider, upstream = self._upstream_request(call, entry, stream=stream)
        if chain is None:
            max_cost = self.hold_price(call)
        else:  # one hold for the chain: the dearest of its models
            max_cost = chain_hold(chain, lambda e: self.hold_price(call, e))
            links = [Link(entry, provider, upstream)]
            links += [Link(e, *self._upstream_request(call, e, stream=stream)) for e in chain[1:]]
        reply = await place_hold(
            self._billing, self._metrics, call.principal, request_id, max_cost, call.entry.name
        )
        result = Result(
            request_id, {}, Usage(), False, 0, max_cost, reply.available_micros, datetime.now(UTC)
        )
        return Flight(
            call,
            result,
            reply.hold_id or request_id,
            started,
            started_ms,
            trace_headers(),
            provider,
            upstream,
            chain=None if chain is None else links,
        )

    @staticmethod
    def _upstream_request(
        call: OperationCall, entry: CatalogEntry, *, stream: bool
    ) -> tuple[Provider, UpstreamRequest]:
        provider = provider_for(entry.provider)
        if not provider.supports(call.operation):
            raise InvalidRequest(
                f"The model '{entry.name}' (provider {entry.provider}) does not serve "
                f"{call.operation.value} requests.",
                param="model",
                code="unsupported_operation",
            )
        payload = dict(call.payload)
        if call.operation in (Operation.CHAT, Operation.COMPLETION):
            payload["stream"] = stream  # embeddings and images take no stream parameter
        if not stream:
            payload.pop("stream_options", None)
        return provider, provider.request(entry, call.operation, payload, stream=stream)

    async def _upstream(self, flight: Flight, *, stream: bool) -> httpx.Response:
        """The upstream's 200 answer, after retries and fallbacks (routing/) when the first attempt
        fails; `flight.call.entry` is left on the model that served. Raises the refusal / errors."""
        try:
            if flight.chain is not None:
                response = await self._routed(flight, stream, None)
            else:
                try:
                    response = await self._send(flight, stream)
                    self._router.succeeded(flight.call.entry.name)
                except AttemptFailed as failed:  # retries start from here, off the fast path
                    response = await self._routed(flight, stream, failed)
        except UpstreamRejected as rejected:
            await self._fail(flight, "upstream_error")
            message = flight.provider.error_message(rejected.status_code, rejected.body)
            raise UpstreamRefused(rejected.status_code, message) from None
        flight.result.deployment = flight.call.entry.deployment
        return response

    async def _routed(self, flight: Flight, stream: bool, failed: AttemptFailed | None) -> httpx.Response:
        call = flight.call
        chain = flight.chain or [Link(call.entry, flight.provider, flight.request)]

        async def attempt(link: Link, timeout_s: float) -> httpx.Response:
            call.entry, flight.provider, flight.request = link
            return await self._send(flight, stream, timeout_s)

        left = self._timeout_s - (time.perf_counter() - flight.started)  # one deadline for every attempt
        try:
            _, response = await self._router.run(chain, attempt, left, failed)
        except ChainFailed as exhausted:
            error = exhausted.error()
            if not isinstance(error, UpstreamRejected):  # a 429 passed on is the last model's, in its dialect
                call.entry, flight.provider, flight.request = chain[0]  # a failed request is its model's
            await self._fail(flight, exhausted.last.status)
            raise error from None
        return response

    async def _send(self, flight: Flight, stream: bool, timeout_s: float | None = None) -> httpx.Response:
        """One attempt: raises AttemptFailed (retried by routing) or UpstreamRejected (the caller's)."""
        call = flight.call
        url, content, headers = flight.request
        return await post_upstream(
            call.entry,
            url,
            content,
            headers,
            stream=stream,
            timeouts=self._timeout if timeout_s is None else httpx.Timeout(timeout_s),
            tracer=self._tracer,
            span_name=f"upstream.{call.operation.value}",
            metrics=self._metrics,
        )

    async def _fail(self, flight: Flight, status: str) -> None:
        """The upstream failed: the hold goes back, nothing is charged, analytics still see it (once)."""
        if flight.settled:
            return
        await self._billing.release(flight.call.principal.org_id, flight.hold_id)
        self._close_uncharged(flight, status)

    def _close_uncharged(self, flight: Flight, status: str) -> None:
        flight.settled = True
        flight.result.cost_micros = 0
        flight.result.latency_s = time.perf_counter() - flight.started
        self._emit(flight, status)

    def _emit(self, flight: Flight, status: str, *, charged: bool = False) -> Awaitable[None] | None:
        call, result = flight.call, flight.result
        operation = call.operation.value
        self._metrics.operations.labels(call.family, operation, status).inc()
        if result.cost_micros:
            self._metrics.charged_micros.labels(operation, str(call.batch).lower()).inc(result.cost_micros)
        event = usage_event(
            request_id=result.request_id,
            principal=call.principal,
            model=call.entry.name,
            provider=call.entry.provider,
            tokens_in=result.usage.tokens_in,
            tokens_out=result.usage.tokens_out,
            cost_micros=result.cost_micros,
            status=status,
            hold_id=flight.hold_id,
            started_at_unix_ms=flight.started_ms,
            finished_at_unix_ms=int(time.time() * 1000),
            latency_ms=int(result.latency_s * 1000),
            endpoint=call.endpoint,
            stream=call.stream,
            tokens_estimated=result.estimated,
            headers=flight.headers,
            operation=operation,
            batch=call.batch,
            units=result.usage.units,
            token_classes=result.usage,
            requested_model=_requested(flight),
            deployment=call.entry.deployment,
        )
        if not charged:
            self._emitter.emit(event)
            return None
        return self._emitter.answered(event)


def _serving(operation: Operation) -> Callable[[CatalogEntry], bool]:
    """Whether a fallback's provider serves the operation (a configured one that does not is skipped)."""
    return lambda entry: provider_for(entry.provider).supports(operation)


def _requested(flight: Flight) -> str:
    """The model the request named, when a fallback served it (the usage event's requested_model)."""
    chain = flight.chain
    if chain is None or chain[0].entry is flight.call.entry:
        return ""
    return chain[0].entry.name
