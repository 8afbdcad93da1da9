"""Bedrock's Converse answer → an OpenAI chat completion (`chat_completion`): text, toolUse blocks
as tool_calls, reasoningContent as reasoning_content, stopReason → finish_reason, and usage in
OpenAI's shape (prompt_tokens include cache reads and writes, kept in prompt_tokens_details for
pricing: openai_chat.openai_usage). Converse names neither the answer nor the model: the id is ours."""

from __future__ import annotations

import uuid
from typing import Any

from tollgate.gateway.providers import openai_chat
from tollgate.gateway.providers.openai_chat import as_object

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
USAGE_NAMES = openai_chat.UsageNames(
    input="inputTokens",
    output="outputTokens",
    cache_read="cacheReadInputTokens",
    cache_write="cacheWriteInputTokens",
)


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def finish_reason(stop_reason: Any) -> str | None:
    return None if stop_reason is None else FINISH_REASONS.get(stop_reason, "stop")


def openai_usage(usage: Any) -> dict[str, Any] | None:
    return openai_chat.openai_usage(usage, USAGE_NAMES)


def chat_completion(data: dict[str, Any]) -> dict[str, Any]:
    message = as_object(as_object(data.get("output")).get("message"))
    content = message.get("content")
    if not isinstance(content, list):
        raise ValueError("not a Converse answer")
    texts, reasoning, calls = [], [], []
    for block in content:
        block = as_object(block)
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif "toolUse" in block:
            use = as_object(block["toolUse"])
            calls.append(openai_chat.tool_call(use.get("toolUseId"), use.get("name"), use.get("input")))
        elif "reasoningContent" in block:
            reasoning.append(
                as_object(as_object(block["reasoningContent"]).get("reasoningText")).get("text") or ""
            )
    return openai_chat.chat_completion(
        completion_id(),
        None,
        texts,
        reasoning,
        calls,
        finish_reason(data.get("stopReason")) or "stop",
        openai_usage(data.get("usage")),
    )
