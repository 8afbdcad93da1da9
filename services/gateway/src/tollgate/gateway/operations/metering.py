"""What an operation may use (its bound, which sizes the hold) and what it did use (its usage,
from the upstream's report or, when it reports none, the gateway's own count). Pure functions."""

from __future__ import annotations

from typing import Any

from tollgate.gateway.completions.tokens import (
    PESSIMISTIC_PER_MESSAGE,
    heuristic_completion_tokens,
    heuristic_prompt_tokens,
    pessimistic_prompt_tokens,
    reported_usage,
)
from tollgate.gateway.pricing.cost import Operation, Usage


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def texts(value: Any) -> list[str]:
    """A prompt or embedding input: a string or an array of strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def pessimistic_text_tokens(items: list[str]) -> int:
    """As for chat messages: UTF-8 bytes / 2, + 8 per item."""
    return _ceil_div(sum(len(t.encode()) for t in items), 2) + PESSIMISTIC_PER_MESSAGE * len(items)


def heuristic_text_tokens(items: list[str]) -> int:
    return sum(_ceil_div(len(t), 4) for t in items)


def bound(operation: Operation, payload: dict[str, Any], max_tokens: int) -> Usage:
    """The most the request may use: what its hold is priced over."""
    if operation is Operation.CHAT:
        return Usage(pessimistic_prompt_tokens(payload["messages"], payload.get("tools")), max_tokens)
    if operation is Operation.COMPLETION:
        return Usage(pessimistic_text_tokens(texts(payload.get("prompt"))), max_tokens)
    if operation is Operation.EMBEDDING:
        inputs = texts(payload.get("input"))
        return Usage(pessimistic_text_tokens(inputs), 0, len(inputs))
    return Usage(0, 0, int(payload.get("n") or 1))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _completion_text_tokens(data: dict[str, Any]) -> int:
    choices = data.get("choices")
    items = (
        [c["text"] for c in choices if isinstance(c, dict) and isinstance(c.get("text"), str)]
        if isinstance(choices, list)
        else []
    )
    return heuristic_text_tokens(items)


def metered(operation: Operation, payload: dict[str, Any], data: dict[str, Any]) -> tuple[Usage, bool]:
    """(usage, estimated): the upstream's reported usage, or the gateway's count when it has none."""
    usage = data.get("usage")
    items = data.get("data")
    units = len(items) if isinstance(items, list) else 0
    if operation is Operation.CHAT or operation is Operation.COMPLETION:
        reported = reported_usage(usage)
        if reported is not None:
            return reported, False
        if operation is Operation.CHAT:
            return Usage(
                heuristic_prompt_tokens(payload["messages"]), heuristic_completion_tokens(data)
            ), True
        prompt = heuristic_text_tokens(texts(payload.get("prompt")))
        return Usage(prompt, _completion_text_tokens(data)), True
    if operation is Operation.EMBEDDING:
        prompt = _int(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
        if prompt is not None:
            return Usage(prompt, 0, units), False
        return Usage(heuristic_text_tokens(texts(payload.get("input"))), 0, units), True
    prompt = None
    if isinstance(usage, dict):
        prompt = _int(usage.get("input_tokens"))
        if prompt is None:
            prompt = _int(usage.get("prompt_tokens"))
    return Usage(prompt or 0, 0, units), prompt is None
