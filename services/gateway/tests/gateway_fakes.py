"""Fakes for the gateway's collaborators (auth, billing, Kafka producer, spool) and the real
upstream simulator app, served in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette

from tollgate.common.auth_client import Principal
from tollgate.common.errors import Unauthenticated
from tollgate.contracts.v1 import billing_pb2, events_pb2
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.usage.events import OutgoingEvent

PRINCIPALS = {
    "user-key": Principal(1, "org-1", "user-1", "user", 0, ("read", "write"), "tg_user", 0, 0),
    "admin-key": Principal(2, "org-1", "admin-1", "admin", 0, ("read", "write"), "tg_admin", 0, 0),
    "poor-key": Principal(3, "org-poor", "user-3", "user", 0, ("read", "write"), "tg_poor", 0, 0),
    "quota-key": Principal(4, "org-quota", "user-4", "user", 0, ("read", "write"), "tg_quota", 0, 5_000_000),
    "budget-key": Principal(5, "org-budget", "user-5", "user", 0, ("read", "write"), "tg_budget", 0, 0),
}


class FakeAuth:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def authenticate(self, api_key: str) -> Principal:
        self.calls.append(api_key)
        principal = PRINCIPALS.get(api_key)
        if principal is None:
            raise Unauthenticated("Incorrect API key provided.")
        return principal


@dataclass
class FakeBilling:
    refused_orgs: set[str] = field(default_factory=lambda: {"org-poor", "org-quota", "org-budget"})
    # org -> the reason billing gives when it refuses (default: insufficient_credits)
    reasons: dict[str, str] = field(
        default_factory=lambda: {"org-quota": "quota_exceeded", "org-budget": "budget_exceeded"}
    )
    available_micros: int = 10**12
    reserves: list[tuple[str, int, str, int]] = field(default_factory=list)
    requests: list[billing_pb2.ReserveRequest] = field(default_factory=list)
    releases: list[tuple[str, str]] = field(default_factory=list)

    async def reserve(
        self, principal: Principal, request_id: str, max_cost_micros: int, model: str
    ) -> billing_pb2.ReserveResponse:
        org_id = principal.org_id
        self.reserves.append((org_id, principal.key_id, request_id, max_cost_micros))
        self.requests.append(
            billing_pb2.ReserveRequest(
                org_id=org_id,
                key_id=principal.key_id,
                request_id=request_id,
                max_cost_micros=max_cost_micros,
                month_quota_micros=principal.month_quota_micros,
                user_id=principal.user_id,
                model=model,
            )
        )
        if org_id in self.refused_orgs:
            reason = self.reasons.get(org_id, "insufficient_credits")
            return billing_pb2.ReserveResponse(granted=False, available_micros=10, reason=reason)
        return billing_pb2.ReserveResponse(
            granted=True,
            hold_id=request_id,
            available_micros=self.available_micros,
            hold_micros=max_cost_micros,
        )

    async def release(self, org_id: str, hold_id: str) -> bool:
        self.releases.append((org_id, hold_id))
        return True


class FakeEmitter:
    """The usage recorder: `answered` (a charged request, whose hold is marked) and `emit`."""

    def __init__(self) -> None:
        self.events: list[OutgoingEvent] = []
        self.marked: list[str] = []  # event ids of the charged requests, whose holds were marked

    def emit(self, event: OutgoingEvent) -> None:
        self.events.append(event)

    def answered(self, event: OutgoingEvent) -> None:
        self.marked.append(event.event_id)
        self.events.append(event)

    def decoded(self) -> list[events_pb2.UsageRecorded]:
        return [events_pb2.UsageRecorded.FromString(e.value) for e in self.events]


class FakeCatalog:
    def __init__(self, entries: list[CatalogEntry]) -> None:
        self.by_name = {e.name: e for e in entries}

    def get(self, name: str) -> CatalogEntry | None:
        return self.by_name.get(name)

    def entries(self) -> list[CatalogEntry]:
        return list(self.by_name.values())


def entry(name: str, upstream_model: str, client: httpx.AsyncClient, **kw: Any) -> CatalogEntry:
    values: dict[str, Any] = {
        "id": 1,
        "name": name,
        "provider": "openai-compatible",
        "chat_url": "http://sim/v1/chat/completions",
        "upstream_model": upstream_model,
        "api_key": "provider-secret",
        "price_in_micros": 2_000_000,  # 2 credits per 1M tokens
        "price_out_micros": 6_000_000,
        "max_tokens_default": 4096,
        "group_id": 0,
        "created_unix": 0,
        "client": client,
    }
    values.update(kw)
    return CatalogEntry(**values)


def anthropic_entries(client: httpx.AsyncClient) -> list[CatalogEntry]:
    """Models whose upstream speaks Anthropic's Messages API; cached input costs 1 micro-credit a
    token, a cache write 3 (fresh input 2, output 6)."""
    prices = {
        "provider": "anthropic",
        "price_cached_in_micros": 1_000_000,
        "price_cache_write_micros": 3_000_000,
    }
    return [
        entry("claude-sim", "claude-sim", client, **prices),
        entry("claude-cached", "claude-sim-cachewrite", client, **prices),
        entry("claude-ratelimited", "claude-sim-ratelimited", client, **prices),
        entry("claude-overloaded", "claude-sim-overloaded", client, **prices),
        entry("claude-streamfail", "claude-sim-streamfail", client, **prices),
        entry("claude-nokey", "claude-sim", client, **{**prices, "api_key": None}),
    ]


BEDROCK_SECRET = orjson.dumps(
    {"region": "eu-west-1", "accessKeyId": "AKIDSIM", "secretAccessKey": "sim-secret"}
).decode()


def bedrock_entries(client: httpx.AsyncClient) -> list[CatalogEntry]:
    """Models whose upstream speaks Bedrock's Converse API (the simulator's /model/{id}/converse),
    credentials as the catalog stores them; prices as anthropic_entries'."""
    prices = {
        "provider": "bedrock-converse",
        "chat_url": "http://sim/chat/completions",  # api_base: the endpoint override, http://sim
        "api_key": BEDROCK_SECRET,
        "price_cached_in_micros": 1_000_000,
        "price_cache_write_micros": 3_000_000,
    }
    return [
        entry("bedrock-sim", "anthropic.claude-sim-v1:0", client, **prices),
        entry("bedrock-cached", "anthropic.claude-sim-cachewrite", client, **prices),
        entry("bedrock-ratelimited", "anthropic.claude-sim-ratelimited", client, **prices),
        entry("bedrock-badrequest", "anthropic.claude-sim-badrequest", client, **prices),
        entry("bedrock-streamfail", "anthropic.claude-sim-streamfail", client, **prices),
        entry("bedrock-nokey", "anthropic.claude-sim", client, **{**prices, "api_key": None}),
    ]


@dataclass
class Harness:
    client: httpx.AsyncClient
    sim: Starlette
    billing: FakeBilling
    emitter: FakeEmitter
    auth: FakeAuth
    metrics: GatewayMetrics
    catalog: FakeCatalog | None = None  # tests may add models of their own (by_name)
    app: Any = None  # the ASGI app, for SDKs that bring their own HTTP client


def sse_events(body: bytes) -> list[str]:
    """The data payloads of a server-sent events body, in order."""
    out = []
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                out.append(line[5:].strip().decode())
    return out


def failing_client(exc: Exception) -> httpx.AsyncClient:
    """An upstream whose every request fails with `exc` (timeouts, refused connections)."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


class _BreakingStream(httpx.AsyncByteStream):
    def __init__(self, events: list[bytes]) -> None:
        self._events = events

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self._events:
            yield event
        raise httpx.ReadError("connection reset mid-stream")


def breaking_stream_client(content_chunks: int) -> httpx.AsyncClient:
    """An upstream whose stream sends a role chunk and `content_chunks` content chunks, then fails."""

    def chunk(delta: dict[str, str]) -> bytes:
        body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]  # type: ignore[assignment]
        return b"data: " + orjson.dumps(body) + b"\n\n"

    events = [chunk({"role": "assistant"})] + [chunk({"content": f"w{i} "}) for i in range(content_chunks)]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_BreakingStream(events)
        )

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))
