"""Token estimates (the cost math is tollgate.gateway.pricing.cost).

Two estimates on purpose: a *pessimistic* one sizes the credit hold before the call (so a hold
is rarely too small), a *heuristic* one (~4 chars per token) bills a call whose upstream did
not report usage.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.gateway.pricing.cost import Usage

PESSIMISTIC_PER_MESSAGE = 8
HEURISTIC_PER_MESSAGE = 4


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _message_texts(message: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for call in tool_calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                for key in ("name", "arguments"):
                    if isinstance(function.get(key), str):
                        texts.append(function[key])
    return texts


def pessimistic_prompt_tokens(messages: list[dict[str, Any]], tools: Any = None) -> int:
    """UTF-8 bytes of all text / 2, + 8 per message (tool schemas count as text too)."""
    size = sum(len(t.encode()) for m in messages for t in _message_texts(m))
    if tools:
        size += len(orjson.dumps(tools))
    return _ceil_div(size, 2) + PESSIMISTIC_PER_MESSAGE * len(messages)


def heuristic_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """ceil(chars / 4) + 4 per message."""
    chars = sum(len(t) for m in messages for t in _message_texts(m))
    return _ceil_div(chars, 4) + HEURISTIC_PER_MESSAGE * len(messages)


def heuristic_completion_tokens(response: dict[str, Any]) -> int:
    """ceil(chars / 4) of the choices' message text and tool-call arguments."""
    chars = 0
    choices = response.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict):
                chars += sum(len(t) for t in _message_texts(message))
    return _ceil_div(chars, 4)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _detail(usage: dict[str, Any], details: str, key: str) -> int:
    part = usage.get(details)
    return (_count(part.get(key)) or 0) if isinstance(part, dict) else 0


def reported_usage(usage: Any) -> Usage | None:
    """The upstream's reported usage with its token classes, or None when it reported none usable.

    Two shapes are read (docs/billing.md "Token classes"):
    - OpenAI's: prompt_tokens and completion_tokens, which *include* the classes:
      prompt_tokens_details.cached_tokens (cache reads), prompt_tokens_details.cache_write_tokens or
      a top-level cache_creation_input_tokens (cache writes; also cache_read_input_tokens, as
      OpenAI-compatible proxies of Anthropic models report them), and
      completion_tokens_details.reasoning_tokens;
    - Anthropic's: input_tokens and output_tokens, where input_tokens *excludes*
      cache_read_input_tokens and cache_creation_input_tokens (they are added to it here).
    """
    if not isinstance(usage, dict):
        return None
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    if prompt is not None and completion is not None:
        cached = _detail(usage, "prompt_tokens_details", "cached_tokens") or (
            _count(usage.get("cache_read_input_tokens")) or 0
        )
        written = _detail(usage, "prompt_tokens_details", "cache_write_tokens") or (
            _count(usage.get("cache_creation_input_tokens")) or 0
        )
        reasoning = _detail(usage, "completion_tokens_details", "reasoning_tokens")
        return Usage(
            prompt, completion, 0, min(cached, prompt), min(written, prompt), min(reasoning, completion)
        )
    fresh, output = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
    if fresh is not None and output is not None:
        cached = _count(usage.get("cache_read_input_tokens")) or 0
        written = _count(usage.get("cache_creation_input_tokens")) or 0
        return Usage(fresh + cached + written, output, 0, cached, written, 0)
    return None
