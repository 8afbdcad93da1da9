"""An Anthropic Messages request, checked field by field and turned into the OpenAI chat request
that the operations pipeline sends upstream (translate.py does the content blocks and tools)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from tollgate.gateway.anthropic_door.translate import (
    invalid,
    openai_messages,
    openai_tool_choice,
    openai_tools,
)
from tollgate.gateway.completions.tokens import heuristic_prompt_tokens


@dataclass(slots=True)
class MessagesRequest:
    model: str
    max_tokens: int  # 0 when counting tokens, where it is not asked for
    stream: bool
    payload: dict[str, Any]  # the OpenAI chat body (the pipeline sets its model and stream)
    stop_sequences: list[str] = field(default_factory=list)


def parse_messages_request(body: dict[str, Any], *, counting: bool = False) -> MessagesRequest:
    """`counting`: the body of /v1/messages/count_tokens, which has no max_tokens nor sampling."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("model", "is required and must be a non-empty string.")
    payload: dict[str, Any] = {"messages": openai_messages(body.get("system"), body.get("messages"))}
    tools = openai_tools(body.get("tools"))
    if tools:
        payload["tools"] = tools
    payload.update(openai_tool_choice(body.get("tool_choice"), tools))
    if counting:
        return MessagesRequest(model, 0, False, payload)
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise invalid("max_tokens", "is required and must be a positive integer.")
    payload["max_tokens"] = max_tokens
    stop_sequences = _stop_sequences(body.get("stop_sequences"))
    if stop_sequences:
        payload["stop"] = stop_sequences
    for name in ("temperature", "top_p"):  # Anthropic's range, 0-1, is within OpenAI's
        value = body.get(name)
        if value is not None:
            if not _number(value) or not 0 <= value <= 1:
                raise invalid(name, "must be a number between 0 and 1.")
            payload[name] = value
    top_k = body.get("top_k")
    if top_k is not None and (not _integer(top_k) or top_k < 0):
        raise invalid("top_k", "must be a non-negative integer.")  # checked, then dropped: OpenAI has none
    user = _metadata_user(body.get("metadata"))
    if user:
        payload["user"] = user
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream", "must be a boolean.")
    return MessagesRequest(model, max_tokens, stream, payload, stop_sequences)


def estimated_input_tokens(payload: dict[str, Any]) -> int:
    """count_tokens' answer: the gateway's heuristic (~4 characters a token, + 4 a message), with the
    tool definitions counted as their JSON text. Images are not counted."""
    tools = payload.get("tools")
    tool_chars = len(orjson.dumps(tools)) if tools else 0
    messages: list[dict[str, Any]] = payload["messages"]
    return heuristic_prompt_tokens(messages) + -(-tool_chars // 4)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise invalid("stop_sequences", "must be an array of non-empty strings.")
    return list(value)


def _metadata_user(metadata: Any) -> str | None:
    """metadata.user_id becomes OpenAI's `user`: the one field the two APIs share for it."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid("metadata", "must be an object.")
    user = metadata.get("user_id")
    if user is not None and not isinstance(user, str):
        raise invalid("metadata.user_id", "must be a string.")
    return user or None
