"""OpenAI's own dialect, spoken by OpenAI and every OpenAI-compatible server (vLLM, llama-cpp's
server, the simulator): the body goes up as the caller sent it, with the provider's model name,
and the answer, the stream and the refusals come back as they are."""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.gateway.pricing.cost import Operation
from tollgate.gateway.providers.base import (
    Provider,
    UpstreamRequest,
    UpstreamStream,
    UpstreamTarget,
    refused_message,
)
from tollgate.gateway.providers.documents import DOCS_MARK, docs_as_text

UPSTREAM_PATHS = {
    Operation.CHAT: "/chat/completions",
    Operation.COMPLETION: "/completions",
    Operation.EMBEDDING: "/embeddings",
    Operation.IMAGE: "/images/generations",
}


class OpenAICompatible(Provider):
    lean = True

    def supports(self, operation: Operation) -> bool:
        return True

    def request(
        self, target: UpstreamTarget, operation: Operation, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        payload["model"] = target.upstream_model
        if payload.pop(DOCS_MARK, None):  # the Bedrock-style gateway's doc parts, as text parts
            payload["messages"] = docs_as_text(payload["messages"])
        if stream:
            # Always ask for usage; the relay hides it from clients who did not ask.
            options = payload.get("stream_options") or {}
            payload["stream_options"] = {**options, "include_usage": True}
        # Our request id stays ours: providers differ in what they accept as X-Request-ID
        # (llama-cpp-python's server answers 400 to anything but a UUID); traceparent links the calls.
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        url = target.chat_url if operation is Operation.CHAT else target.api_base + UPSTREAM_PATHS[operation]
        return UpstreamRequest(url, orjson.dumps(payload), headers)

    def answer(self, operation: Operation, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def stream(self, operation: Operation, upstream: UpstreamStream) -> UpstreamStream:
        return upstream

    def error_body(self, status_code: int, body: bytes) -> bytes:
        return body  # already OpenAI's envelope

    def error_message(self, status_code: int, body: bytes) -> str:
        return refused_message(body, status_code)
