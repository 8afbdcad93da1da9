"""Anthropic's Messages answer → an OpenAI chat completion (`chat_completion`): text, tool_use
blocks as tool_calls, thinking as reasoning_content, stop_reason → finish_reason, and usage in
OpenAI's shape (prompt_tokens include the cache reads and writes, which are kept so pricing sees
them: openai_chat.openai_usage)."""

from __future__ import annotations

from typing import Any

from tollgate.gateway.providers import openai_chat

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
USAGE_NAMES = openai_chat.UsageNames(
    input="input_tokens",
    output="output_tokens",
    cache_read="cache_read_input_tokens",
    cache_write="cache_creation_input_tokens",
)


def finish_reason(stop_reason: Any) -> str | None:
    return None if stop_reason is None else FINISH_REASONS.get(stop_reason, "stop")


def openai_usage(usage: Any) -> dict[str, Any] | None:
    return openai_chat.openai_usage(usage, USAGE_NAMES)


def chat_completion(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if message.get("type") != "message" or not isinstance(content, list):
        raise ValueError("not a Messages answer")
    texts, reasoning, calls = [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            calls.append(openai_chat.tool_call(block.get("id"), block.get("name"), block.get("input")))
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
    return openai_chat.chat_completion(
        message.get("id"),
        message.get("model"),
        texts,
        reasoning,
        calls,
        finish_reason(message.get("stop_reason")) or "stop",
        openai_usage(message.get("usage")),
    )
