"""Everything before the upstream call: who asks (principal and permission), which model (the
catalog and the key's grant), its chain (fallbacks, deployments), the provider requests (built
before the hold: what a dialect cannot express is a 400 with nothing held), and the hold itself,
from the hold stock when the call allows it, else billing's Reserve."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tollgate.common.auth_client import Principal, api_key_from_headers
from tollgate.common.errors import InvalidRequest, NotFound, Unauthenticated
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.completions.billing import place_hold
from tollgate.gateway.completions.hold_stock import HoldStock
from tollgate.gateway.limits.gate import RateGate
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.pipeline.call import Call
from tollgate.gateway.pipeline.ports import Billing, Catalog, Principals
from tollgate.gateway.pricing.cost import (
    Operation,
    PricingPolicy,
    chat_hold,
    flat_request_cost,
    hold_micros,
)
from tollgate.gateway.principals.grants import ensure_model_allowed
from tollgate.gateway.principals.permissions import ensure_permitted
from tollgate.gateway.providers.base import Provider, UpstreamRequest
from tollgate.gateway.providers.registry import provider_for
from tollgate.gateway.routing.chain import Link, chain_hold, chain_of, take_fallbacks
from tollgate.gateway.usage.events import trace_headers


class Admission:
    def __init__(
        self,
        principals: Principals,
        catalog: Catalog,
        billing: Billing,
        metrics: GatewayMetrics,
        *,
        pricing: PricingPolicy,
        default_max_tokens: int,
        hold_stock: HoldStock | None,
        rate_gate: RateGate | None = None,
    ) -> None:
        self._gate = rate_gate
        self._principals = principals
        self._catalog = catalog
        self._billing = billing
        self._metrics = metrics
        self.pricing = pricing
        self.default_max_tokens = default_max_tokens
        self._stock = hold_stock if hold_stock is not None and hold_stock.enabled else None

    # -- who, and which model ----------------------------------------------------------------------

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
        """The catalog model (404 model_not_found) the key may call (403, before any hold)."""
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

    # -- the chain, the provider requests and the hold ---------------------------------------------

    def hold_price(self, call: Call, entry: CatalogEntry) -> int:
        """The call's bound priced with `entry`'s prices, token classes at their dearest."""
        if call.flat:
            return flat_request_cost(entry, self.pricing, batch=call.batch)
        bound = call.bound
        if bound is None:
            max_tokens = call.max_tokens or entry.max_tokens_default or self.default_max_tokens
            return chat_hold(entry, call.prompt_bound, max_tokens, self.pricing, call.batch)
        return hold_micros(entry, call.operation, bound, self.pricing, batch=call.batch)

    async def admit(self, call: Call, *, stock: bool = False) -> None:
        """Chain, provider requests, then the hold (`stock`: one the hold stock placed ahead may
        serve). Raises the 400 / 403 of a fallback or a dialect, and billing's refusal, before any
        upstream call."""
        entry, payload = call.entry, call.payload
        chain = None
        if entry.routed or "fallbacks" in payload or "models" in payload:
            requested = take_fallbacks(payload, entry.name)  # 400 / 403 naming a fallback, no hold yet
            chain = chain_of(entry, requested, self._catalog, call.principal, _serving(call.operation))
        if chain is None:
            provider = call.provider = provider_for(entry.provider)
            call.upstream = _request(call, entry, provider, call.owned)
            max_cost = self.hold_price(call, entry)
        else:  # the chain's first deployment is tried first; one hold: the dearest of its models
            links = []
            for link in chain:
                dialect = provider_for(link.provider)
                links.append(Link(link, dialect, _request(call, link, dialect, False)))
            call.chain = links
            call.entry, call.provider, call.upstream = links[0]
            max_cost = chain_hold(chain, lambda e: self.hold_price(call, e))
        call.max_cost_micros = max_cost
        gate = self._gate
        if gate is not None and (
            (limited := gate.limits_of(call.principal, entry.limits)) or call.route_limits
        ):
            # before the hold: a refused request (429) holds nothing and reaches no provider
            call.rate = await gate.admit(call.principal, self._token_bound(call), limited, call.route_limits)
            try:
                call.hold_id = await self._reserve(call, max_cost, stock)
            except BaseException:  # refused for money: the request still counts, its tokens go back
                gate.settle(call.rate, 0)
                raise
        else:
            call.hold_id = await self._reserve(call, max_cost, stock)
        call.headers = trace_headers()

    def _token_bound(self, call: Call) -> int:
        """What the token limits take first, as OpenAI counts it: the prompt's bound plus the most
        the answer may hold (`max_tokens`); the true-up replaces it with the actual usage."""
        bound = call.bound
        if bound is None:
            return call.prompt_bound + self.max_tokens(call.entry, call.max_tokens)
        return bound.tokens_in + bound.tokens_out

    async def _reserve(self, call: Call, max_cost: int, stock: bool) -> str:
        principal, model = call.principal, call.entry.name
        stocker = self._stock if stock else None
        if stocker is not None and (stocked := stocker.take(principal, max_cost, model)) is not None:
            return stocked
        reply = await place_hold(self._billing, self._metrics, principal, call.request_id, max_cost, model)
        if stocker is not None:
            stocker.learn(principal, max_cost, model, reply.stockable)
        call.available_micros = reply.available_micros
        return reply.hold_id or call.request_id


def _request(call: Call, entry: CatalogEntry, provider: Provider, owned: bool) -> UpstreamRequest:
    """`entry`'s upstream request, from the call's body itself when it is the only one and the route
    gave it away, else from a copy (a provider may change the body it is given)."""
    operation = call.operation
    if not provider.supports(operation):
        raise InvalidRequest(
            f"The model '{entry.name}' (provider {entry.provider}) does not serve "
            f"{operation.value} requests.",
            param="model",
            code="unsupported_operation",
        )
    payload = call.payload if owned else dict(call.payload)
    return provider.request(entry, operation, payload, stream=call.stream)


def _serving(operation: Operation) -> Callable[[CatalogEntry], bool]:
    """Whether a fallback's provider serves the operation (a configured one that does not is skipped)."""
    return lambda entry: provider_for(entry.provider).supports(operation)
