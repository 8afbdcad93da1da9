"""`Pipeline`: runs a call through admission (principal, model, chain, provider requests, hold),
the upstream attempts (the first one direct, retries and fallbacks through the Router), and its
accounting. Routes build the `Call`, ask for an answer or a stream, and shape what comes back."""

from __future__ import annotations

import time
from typing import Any

import orjson

from tollgate.common.errors import UpstreamError
from tollgate.gateway.completions.hold_stock import HoldStock
from tollgate.gateway.limits.gate import RateGate
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.pipeline.accounting import Accounts
from tollgate.gateway.pipeline.admission import Admission
from tollgate.gateway.pipeline.call import Call
from tollgate.gateway.pipeline.ports import Billing, Catalog, Emitter, Principals, UpstreamRefused
from tollgate.gateway.pipeline.upstream import Upstream
from tollgate.gateway.pricing.cost import PricingPolicy
from tollgate.gateway.providers.base import UpstreamStream
from tollgate.gateway.routing.attempts import ChainFailed, Router
from tollgate.gateway.routing.chain import Link
from tollgate.gateway.routing.failures import AttemptFailed, UpstreamRejected


class Pipeline(Admission):
    """One per process: chat and every other operation share its router (and so its cooldowns)."""

    def __init__(
        self,
        principals: Principals,
        catalog: Catalog,
        billing: Billing,
        emitter: Emitter,
        metrics: GatewayMetrics,
        *,
        pricing: PricingPolicy | None = None,
        upstream_timeout_s: float = 60.0,
        default_max_tokens: int = 4096,
        router: Router | None = None,
        hold_stock: HoldStock | None = None,
        rate_gate: RateGate | None = None,
    ) -> None:
        pricing = pricing or PricingPolicy()
        super().__init__(
            principals,
            catalog,
            billing,
            metrics,
            pricing=pricing,
            default_max_tokens=default_max_tokens,
            hold_stock=hold_stock,
            rate_gate=rate_gate,
        )
        self._router = router if router is not None else Router()
        self._upstream = Upstream(metrics, upstream_timeout_s)
        self.accounts = Accounts(billing, emitter, metrics, pricing, rate_gate)
        # after the answer (accounting.py): `charge` a metered answer, `settle` a stream once
        self.charge = self.accounts.charge
        self.settle = self.accounts.settle

    # -- the upstream ------------------------------------------------------------------------------

    async def fetch(self, call: Call) -> bytes:
        """A non-streamed call's 200 answer, after retries and fallbacks when the first attempt
        fails; `call.entry` is left on the model that served. Raises UpstreamRefused (the caller's
        fault) or the 502 / 504 of an exhausted chain, the hold released and accounted either way."""
        try:
            if call.chain is not None:
                content: bytes = await self._routed(call, False, None)
                return content
            try:
                content = await self._upstream.fetch(call)
            except AttemptFailed as failed:  # retries start from here, off the fast path
                content = await self._routed(call, False, failed)
                return content
            self._router.succeeded(call.entry)
            return content
        except UpstreamRejected as rejected:
            raise await self._refused(call, rejected) from None

    async def open(self, call: Call) -> UpstreamStream:
        """A stream's OpenAI chunks, from the first model that opens one: a stream fails over only
        before its first byte, while the upstream's status is not 200."""
        try:
            if call.chain is not None:
                opened = await self._routed(call, True, None)
            else:
                try:
                    opened = await self._upstream.open(call)
                    self._router.succeeded(call.entry)
                except AttemptFailed as failed:
                    opened = await self._routed(call, True, failed)
        except UpstreamRejected as rejected:
            raise await self._refused(call, rejected) from None
        return call.provider.stream(call.operation, opened)

    async def _routed(self, call: Call, stream: bool, failed: AttemptFailed | None) -> Any:
        """Retries and fallbacks (routing/): the answer of the first link that gives one; `call` is
        left on that link, so the usage event and the price are its model's. `failed`: the first
        attempt, which failed so."""
        chain = call.chain or [Link(call.entry, call.provider, call.upstream)]
        upstream = self._upstream

        async def attempt(link: Link, timeout_s: float) -> Any:
            call.entry, call.provider, call.upstream = link
            if stream:
                return await upstream.open(call, timeout_s)
            return await upstream.fetch(call, timeout_s)

        left = upstream.timeout_s - (time.perf_counter() - call.started)  # one deadline for every attempt
        try:
            _, answer = await self._router.run(chain, attempt, left, failed)
        except ChainFailed as exhausted:
            error = exhausted.error()
            if not isinstance(error, UpstreamRejected):  # a 429 passed on is the last model's, in its dialect
                call.entry, call.provider, call.upstream = chain[0]  # a failed request is its model's
            await self.accounts.abort(call, exhausted.last.status)
            raise error from None
        return answer

    async def _refused(self, call: Call, rejected: UpstreamRejected) -> UpstreamRefused:
        await self.accounts.abort(call, "upstream_error")
        return UpstreamRefused(rejected.status_code, rejected.body, call.provider)

    # -- the answer --------------------------------------------------------------------------------

    async def answer(self, call: Call) -> dict[str, Any]:
        """A non-streamed call's answer in OpenAI's shape (the provider's dialect translated); not
        yet accounted: the route meters it and calls `charge`."""
        content = await self.fetch(call)
        try:
            data = orjson.loads(content)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return call.provider.answer(call.operation, data)
        except ValueError:
            await self.accounts.abort(call, "upstream_error")
            raise UpstreamError("The upstream model answered with invalid JSON.") from None
