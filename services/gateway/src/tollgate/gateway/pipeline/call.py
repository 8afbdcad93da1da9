"""What one priced request carries through the pipeline (`Call`) and what a non-chat route gets
back (`Result`). One `Call` per request: the chat fast path allocates nothing else of its own."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tollgate.common.auth_client import Principal
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.limits.gate import Admitted
from tollgate.gateway.limits.specs import Limit
from tollgate.gateway.pricing.cost import Operation, Usage
from tollgate.gateway.providers.base import Provider, UpstreamRequest
from tollgate.gateway.providers.registry import OPENAI_COMPATIBLE
from tollgate.gateway.routing.chain import Link

NO_USAGE = Usage()
NO_REQUEST = UpstreamRequest("", b"", {})


@dataclass(slots=True)
class Call:
    """The route states the first fields; the pipeline fills in the rest as the request goes."""

    principal: Principal
    entry: CatalogEntry  # the model that serves: routing moves it along the chain
    operation: Operation
    endpoint: str  # our route, recorded in the usage event
    payload: dict[str, Any]  # the OpenAI-shaped body; each provider request is built from it
    # the most it may use, which the hold is priced over; None: `prompt_bound` input tokens and
    # `max_tokens` (else each model's default) output tokens, as chat prices its chain
    bound: Usage | None
    # route family, the label of gateway_operations_total: openai | credit_chat | indoxrouter |
    # sloughgpt | anthropic | responses; "" for /v1/chat/completions, which counts its answers by
    # HTTP status in gateway_chat_requests_total instead
    family: str = "openai"
    batch: bool = False
    flat: bool = False  # the credit chat API: the flat per-request price; tokens are not priced
    stream: bool = False
    prompt_bound: int = 0
    max_tokens: int | None = None  # as requested (None: the model's default)
    owned: bool = False  # the route gives the payload away: a lone model's request may consume it
    span: str = ""  # the upstream span's name ("": upstream.<operation>)
    request_id: str = ""
    started: float = 0.0  # perf_counter at the start: the one deadline of every attempt
    started_ms: int = 0
    # -- filled by the pipeline ---------------------------------------------------------------------
    provider: Provider = OPENAI_COMPATIBLE  # the upstream's dialect (providers/)
    upstream: UpstreamRequest = NO_REQUEST  # the provider's request, built before the hold
    chain: list[Link] | None = None  # the model and its fallbacks (routing/); None: no chain
    hold_id: str = ""
    max_cost_micros: int = 0
    available_micros: int = 0  # spendable before the hold, as Reserve said (0 from the hold stock)
    headers: list[tuple[str, bytes]] | None = None  # the usage event's trace headers
    settled: bool = False  # its usage event is out (charged, or released uncharged)
    usage: Usage = NO_USAGE
    estimated: bool = False
    cost_micros: int = 0
    latency_s: float = 0.0
    marking: Awaitable[None] | None = None  # the hold's mark being sent (usage/marks.py)
    rate: Admitted | None = None  # what the rate limits took (limits/gate.py); None: not limited
    # the route family's own limits (limits/route_limits.py), on top of the key's and organisation's
    route_limits: tuple[Limit, ...] = ()


@dataclass(slots=True)
class Result:
    """A non-chat route's view of an answered (or settled) call."""

    request_id: str
    data: dict[str, Any]
    usage: Usage
    estimated: bool
    cost_micros: int
    max_cost_micros: int
    available_micros: int  # spendable before this request's hold
    started_at: datetime
    latency_s: float = 0.0
    deployment: str = ""  # the deployment that served (routing/): x-tollgate-deployment
    # the hold's mark being sent (usage/marks.py): awaited before the answer's last bytes leave
    marking: Awaitable[None] | None = None

    @property
    def remaining_micros(self) -> int:
        """What stays spendable once this request is charged (other requests' holds aside)."""
        return max(self.available_micros - self.cost_micros, 0)
