"""The priced operations besides /v1/chat/completions (text completions, embeddings, images, the
credit chat API, IndoxRouter, SloughGPT's embeddings, the Anthropic and Responses doors) on the one
pipeline (gateway/pipeline/): a route builds the `Call`, runs it (or opens its stream), and shapes the
`Result` in its own dialect. What is theirs alone: the upstream body always states `stream` (and a
non-streamed one drops `stream_options`), usage is metered per operation (operations/metering.py),
and a route's result keeps the moment it started and what was spendable before its hold."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from tollgate.gateway.completions.streaming import StreamOutcome
from tollgate.gateway.limits.route_limits import RouteLimits
from tollgate.gateway.operations.metering import metered
from tollgate.gateway.pipeline import Call, Pipeline, Result
from tollgate.gateway.pricing.cost import Operation, Usage
from tollgate.gateway.providers.base import UpstreamStream

__all__ = ["Flight", "Operations", "Result"]


@dataclass(slots=True)
class Flight:
    """An open stream: its call, its OpenAI chunks, and the result its settlement fills in."""

    call: Call
    upstream: UpstreamStream
    result: Result


class Operations:
    """The non-chat routes' side of the pipeline (resolving is the pipeline's own: `principal`,
    `model`, `lookup`, `entries`, `max_tokens`, `pricing`)."""

    def __init__(self, pipeline: Pipeline, route_limits: RouteLimits | None = None) -> None:
        self.pipeline = pipeline
        self.route_limits = route_limits or RouteLimits()
        self.principal = pipeline.principal
        self.model = pipeline.model
        self.lookup = pipeline.lookup
        self.entries = pipeline.entries
        self.max_tokens = pipeline.max_tokens
        self.pricing = pipeline.pricing

    async def run(self, call: Call, request_id: str) -> Result:
        """A non-streamed call, answered in full and accounted; raises the refusal / upstream errors."""
        await self._admit(call, request_id, stream=False)
        return await self.complete(call)

    async def admit(self, call: Call, request_id: str) -> None:
        """Admission alone, for a non-streamed call: a batch admits each of its calls before it
        sends any (then `complete`s them, or `withdraw`s them when one is refused)."""
        await self._admit(call, request_id, stream=False)

    async def withdraw(self, call: Call, status: str) -> None:
        """An admitted call that will not be sent: its hold and rate units go back, nothing charged."""
        await self.pipeline.accounts.abort(call, status)

    async def complete(self, call: Call) -> Result:
        """An admitted call's answer, in full and accounted."""
        data = await self.pipeline.answer(call)
        usage, estimated = metered(call.operation, call.payload, data)
        marking = self.pipeline.charge(call, "ok", usage, estimated)
        if marking is not None:
            await marking
        return _result(call, data)

    async def open_stream(self, call: Call, request_id: str) -> Flight:
        await self._admit(call, request_id, stream=True)
        upstream = await self.pipeline.open(call)
        return Flight(call, upstream, _result(call, {}))

    def settle(self, flight: Flight, outcome: StreamOutcome, estimate: Usage) -> Result:
        """Accounts a stream once, however it ended: what was generated is billed (`estimate`: the
        usage counted by the gateway, when the upstream reported none)."""
        call, result = flight.call, flight.result
        if not call.settled:
            self.pipeline.settle(call, outcome, estimate.tokens_in)
            result.usage, result.estimated, result.cost_micros = call.usage, call.estimated, call.cost_micros
            result.latency_s, result.marking = call.latency_s, call.marking
        return result

    async def _admit(self, call: Call, request_id: str, *, stream: bool) -> None:
        call.request_id = request_id
        call.started, call.started_ms = time.perf_counter(), int(time.time() * 1000)
        call.stream = stream
        payload = call.payload
        if call.operation is Operation.CHAT or call.operation is Operation.COMPLETION:
            payload["stream"] = stream  # embeddings and images take no stream parameter
        if not stream:
            payload.pop("stream_options", None)
        await self.pipeline.admit(call)


def _result(call: Call, data: dict[str, object]) -> Result:
    return Result(
        call.request_id,
        data,
        call.usage,
        call.estimated,
        call.cost_micros,
        call.max_cost_micros,
        call.available_micros,
        datetime.fromtimestamp(call.started_ms / 1000, UTC),
        call.latency_s,
        call.entry.deployment,
        call.marking,
    )
