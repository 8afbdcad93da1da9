"""Token estimates (the cost math is tollgate.gateway.pricing.cost).

Two estimates on purpose: a *pessimistic* one sizes the credit hold before the call (so a hold
is rarely too small), a *heuristic* one (~4 chars per token) bills a call whose upstream did
not report usage.
"""

from __future__ import annotations

from typing import Any

import orjson

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


def reported_usage(usage: Any) -> tuple[int, int] | None:
    """(prompt, completion) when the upstream reported usable numbers, else None."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if isinstance(prompt, int) and isinstance(completion, int) and prompt >= 0 and completion >= 0:
        return prompt, completion
    return None
