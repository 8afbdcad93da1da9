"""Everything after the upstream answered (or failed): the price of what was used, the usage event
(with the hold's mark for a charged request), and the hold going back when nothing is charged.
A call is accounted exactly once, however it ends."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.limits.gate import RateGate
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.pipeline.call import NO_USAGE, Call
from tollgate.gateway.pipeline.ports import Billing, Emitter
from tollgate.gateway.pricing.cost import PricingPolicy, Usage, cost_micros, flat_request_cost
from tollgate.gateway.tasks import TaskSet
from tollgate.gateway.usage.events import usage_event


class Accounts:
    def __init__(
        self,
        billing: Billing,
        emitter: Emitter,
        metrics: GatewayMetrics,
        pricing: PricingPolicy,
        rate_gate: RateGate | None = None,
    ) -> None:
        self._gate = rate_gate
        self._billing = billing
        self._emitter = emitter
        self._metrics = metrics
        self._pricing = pricing
        self._tasks = TaskSet()
        self._charged: dict[tuple[str, bool], Any] = {}  # gateway_charged_micros_total's children

    def charge(self, call: Call, status: str, usage: Usage, estimated: bool) -> Awaitable[None] | None:
        """Prices what the call used and emits its event; the hold's mark is sent with it (await
        the result, when there is one, before the answer's last bytes leave)."""
        call.settled = True
        call.usage, call.estimated = usage, estimated
        if call.rate is not None and self._gate is not None:  # the token limits take the actual usage
            self._gate.settle(call.rate, usage.tokens_in + usage.tokens_out)
        if call.flat:
            call.cost_micros = flat_request_cost(call.entry, self._pricing, batch=call.batch)
        else:
            call.cost_micros = cost_micros(call.entry, call.operation, usage, self._pricing, batch=call.batch)
        marking = call.marking = self._emit(call, status, charged=True)
        return marking

    async def abort(self, call: Call, status: str) -> None:
        """The upstream failed: the hold goes back, nothing is charged, analytics still see it (once)."""
        if call.settled:
            return
        call.settled = True
        await self._billing.release(call.principal.org_id, call.hold_id)
        self._uncharged(call, status)

    def settle(self, call: Call, outcome: StreamOutcome, prompt_estimate: int) -> Awaitable[None] | None:
        """Accounts a stream once, however it ended: what was generated is billed (the prompt at
        `prompt_estimate` tokens and a token a content chunk when the upstream reported no usage)."""
        if call.settled:
            return None
        usage = outcome.usage
        if outcome.status != "client_disconnected" and usage is None and not outcome.content_chunks:
            # the upstream failed before its first token: nothing was delivered, nothing is charged
            call.settled = True
            self._uncharged(call, outcome.status)
            self._tasks.spawn(self._billing.release(call.principal.org_id, call.hold_id))
            return None
        if usage is None:
            return self.charge(call, outcome.status, Usage(prompt_estimate, outcome.content_chunks), True)
        return self.charge(call, outcome.status, usage, False)

    def _uncharged(self, call: Call, status: str) -> None:
        call.usage, call.estimated, call.cost_micros = NO_USAGE, False, 0
        if call.rate is not None and self._gate is not None:  # nothing generated: the tokens go back
            self._gate.settle(call.rate, 0)
        self._emit(call, status, charged=False)

    def _emit(self, call: Call, status: str, *, charged: bool) -> Awaitable[None] | None:
        entry, operation, cost = call.entry, call.operation, call.cost_micros
        latency_s = call.latency_s = time.perf_counter() - call.started
        if call.family:  # /v1/chat/completions counts its answers by HTTP status instead
            self._metrics.operations.labels(call.family, operation.value, status).inc()
        if cost:  # every priced answer, chat's too (it is most of what is charged)
            charged = self._charged.get((operation.value, call.batch))
            if charged is None:
                charged = self._charged[(operation.value, call.batch)] = self._metrics.charged_micros.labels(
                    operation.value, str(call.batch).lower()
                )
            charged.inc(cost)
        usage, chain = call.usage, call.chain
        # the model the request named, when another one of its chain served it
        requested = "" if chain is None or chain[0].entry.name == entry.name else chain[0].entry.name
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
            finished_at_unix_ms=int(time.time() * 1000),
            latency_ms=int(latency_s * 1000),
            endpoint=call.endpoint,
            stream=call.stream,
            tokens_estimated=call.estimated,
            headers=call.headers or [],
            operation=operation,
            batch=call.batch,
            units=usage.units,
            token_classes=usage,
            requested_model=requested,
            deployment=entry.deployment,
        )
        if not charged:
            self._emitter.emit(event)
            return None
        return self._emitter.answered(event)
