"""An OpenAI chat completion as Anthropic's message object (pure): its text and tool calls as
content blocks, its finish reason as a stop reason, and the usage the gateway billed."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from tollgate.gateway.anthropic_door.translate import anthropic_usage, as_object, stop_reason
from tollgate.gateway.pricing.cost import Usage


def message_id(request_id: str) -> str:
    """The message id carries the gateway's request id, so a client's id finds the usage event."""
    return "msg_" + request_id.removeprefix("req_")


def tool_use_id() -> str:
    """For a tool call an upstream streamed without an id (Anthropic's clients need one to answer)."""
    return f"toolu_{uuid.uuid4().hex[:24]}"


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments (a JSON string) as Anthropic's `input` object. Arguments that are not
    a JSON object are kept whole under `_arguments`, rather than lost."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_arguments": arguments}
    return value if isinstance(value, dict) else {"_arguments": arguments}


def message_shell(request_id: str, model: str, usage: Usage) -> dict[str, Any]:
    """A message without content or stop reason: a stream's `message_start` carries it."""
    return {
        "id": message_id(request_id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


def anthropic_message(
    data: dict[str, Any], *, request_id: str, model: str, usage: Usage, stop_sequences: list[str]
) -> dict[str, Any]:
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = as_object(choice.get("message"))
    content: list[dict[str, Any]] = []
    text = message.get("content") or message.get("refusal")
    if isinstance(text, list):  # a few servers answer in content parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = as_object(call).get("function")
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or tool_use_id(),
                "name": function.get("name") or "",
                "input": tool_input(function.get("arguments")),
            }
        )
    has_calls = any(block["type"] == "tool_use" for block in content)
    reason, sequence = stop_reason(
        choice.get("finish_reason"), choice.get("stop_reason"), has_calls, stop_sequences
    )
    body = message_shell(request_id, model, usage)
    body.update(content=content, stop_reason=reason, stop_sequence=sequence)
    return body
