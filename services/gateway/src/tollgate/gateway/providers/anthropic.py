"""Anthropic's Messages API (`POST {base_url}/messages`) behind the OpenAI chat dialect.

The translations live beside this module, one role each: anthropic_request (OpenAI chat body →
Messages body, on content_blocks, which it shares with bedrock-converse), anthropic_answer (the
message → an OpenAI chat completion, stop_reason → finish_reason, usage in OpenAI's shape),
anthropic_stream (the event stream → OpenAI chunks), anthropic_errors (refusals → OpenAI's
envelope). Only chat is served: Anthropic has no completions, embeddings or images.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.gateway.pricing.cost import Operation
from tollgate.gateway.providers.anthropic_answer import chat_completion, finish_reason, openai_usage
from tollgate.gateway.providers.anthropic_errors import openai_error
from tollgate.gateway.providers.anthropic_request import request_body
from tollgate.gateway.providers.anthropic_stream import AnthropicChatStream, StreamTranslator
from tollgate.gateway.providers.base import (
    Provider,
    UpstreamRequest,
    UpstreamStream,
    UpstreamTarget,
    refused_message,
)
from tollgate.gateway.providers.documents import DOCS_MARK

__all__ = [  # what callers and tests import from here, wherever it is defined
    "Anthropic",
    "AnthropicChatStream",
    "StreamTranslator",
    "chat_completion",
    "finish_reason",
    "openai_error",
    "openai_usage",
    "request_body",
]

ANTHROPIC_VERSION = "2023-06-01"
MESSAGES_PATH = "/messages"
FALLBACK_MAX_TOKENS = 4096  # a model always has a default; this is for one that says 0


class Anthropic(Provider):
    lean = True  # plain-http upstreams: non-streamed calls on the lean HTTP/1.1 client too

    def supports(self, operation: Operation) -> bool:
        return operation is Operation.CHAT

    def request(
        self, target: UpstreamTarget, operation: Operation, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        payload.pop(DOCS_MARK, None)  # doc parts go up as document blocks (anthropic_request)
        body = request_body(
            payload, target.upstream_model, target.max_tokens_default or FALLBACK_MAX_TOKENS, stream=stream
        )
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return UpstreamRequest(target.api_base + MESSAGES_PATH, orjson.dumps(body), headers)

    def answer(self, operation: Operation, data: dict[str, Any]) -> dict[str, Any]:
        return chat_completion(data)

    def stream(self, operation: Operation, upstream: UpstreamStream) -> UpstreamStream:
        return AnthropicChatStream(upstream)

    def error_body(self, status_code: int, body: bytes) -> bytes:
        return orjson.dumps(openai_error(status_code, body))

    def error_message(self, status_code: int, body: bytes) -> str:
        return refused_message(body, status_code)
