"""The provider interface: what differs between upstream API dialects, below the one pipeline.

The gateway speaks OpenAI's dialect to its callers and keeps one pipeline for every request
(parse → principal → model → hold → upstream → usage). A provider is the edge of that pipeline
where an upstream's own dialect is spoken: it builds the upstream request from an OpenAI body,
turns the upstream's answer and stream back into OpenAI's shapes (usage included, so metering and
pricing read one shape), and maps the upstream's refusals to OpenAI's error envelope.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, NamedTuple, Protocol

import orjson

from tollgate.gateway.pricing.cost import Operation


class UpstreamTarget(Protocol):
    """What a provider reads from a catalog model (a CatalogEntry satisfies it)."""

    @property
    def upstream_model(self) -> str: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def chat_url(self) -> str: ...
    @property
    def api_base(self) -> str: ...
    @property
    def max_tokens_default(self) -> int: ...


class UpstreamStream(Protocol):
    """A streamed upstream body: an httpx.Response, or a provider's translation of one."""

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class UpstreamRequest(NamedTuple):
    url: str
    content: bytes
    headers: dict[str, str]  # without trace context: the caller injects it inside its client span


class Provider(ABC):
    """One upstream dialect. Instances are stateless and shared (see providers.registry)."""

    # May the chat fast path's lean HTTP/1.1 client carry this provider's non-streamed calls?
    lean: bool = False

    @abstractmethod
    def supports(self, operation: Operation) -> bool:
        """Whether the upstream serves this operation at all (checked before any hold)."""

    @abstractmethod
    def request(
        self, target: UpstreamTarget, operation: Operation, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        """The upstream call for an OpenAI-shaped body (which it may change in place). Raises
        InvalidRequest for what the upstream cannot express; it runs before the hold is placed."""

    @abstractmethod
    def answer(self, operation: Operation, data: dict[str, Any]) -> dict[str, Any]:
        """The upstream's non-streamed JSON answer in OpenAI's shape (ValueError: not an answer)."""

    @abstractmethod
    def stream(self, operation: Operation, upstream: UpstreamStream) -> UpstreamStream:
        """The upstream's stream as OpenAI server-sent events (chunks, a usage chunk, [DONE])."""

    @abstractmethod
    def error_body(self, status_code: int, body: bytes) -> bytes:
        """A refusal the caller can fix (a 4xx passed through), in OpenAI's error envelope."""

    @abstractmethod
    def error_message(self, status_code: int, body: bytes) -> str:
        """The refusal's message, for route families that render their own envelope."""


def envelope_message(body: bytes) -> str | None:
    """`error.message` of an error body: OpenAI's envelope and Anthropic's both keep it there."""
    try:
        data = orjson.loads(body)
        message = data["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return None
    return message if isinstance(message, str) and message else None


def refused_message(body: bytes, status_code: int) -> str:
    return envelope_message(body) or f"The upstream model refused the request (HTTP {status_code})."
