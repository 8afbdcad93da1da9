"""An OpenAI chat completion as a Responses API `response` object (pure): its text as a `message`
output item, its tool calls as `function_call` items, its finish reason as the response's status,
and the usage the gateway billed. Field names follow the `openai` SDK's types/responses/."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from tollgate.gateway.pricing.cost import Usage

# chat's finish reasons that end a response early, as Responses' incomplete_details.reason
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


def response_id(request_id: str) -> str:
    """The response id carries the gateway's request id, so a client's id finds the usage event."""
    return "resp_" + request_id.removeprefix("req_")


def message_item_id(request_id: str, index: int = 0) -> str:
    suffix = request_id.removeprefix("req_")
    return f"msg_{suffix}" if index == 0 else f"msg_{suffix}_{index}"


def function_item_id() -> str:
    return f"fc_{uuid.uuid4().hex}"


def call_id() -> str:
    """For a tool call an upstream sent without an id: the client needs one to answer it."""
    return f"call_{uuid.uuid4().hex[:24]}"


def as_object(value: Any) -> dict[str, Any]:
    """An upstream's JSON object, or an empty one where it sent something else."""
    return value if isinstance(value, dict) else {}


def responses_usage(usage: Usage) -> dict[str, Any]:
    """What the gateway billed, in Responses' shape: input_tokens includes cache reads and writes,
    as OpenAI's prompt_tokens (and the gateway's tokens_in) do; output_tokens includes reasoning."""
    return {
        "input_tokens": usage.tokens_in,
        "input_tokens_details": {"cached_tokens": usage.cached_in, "cache_write_tokens": usage.cache_write},
        "output_tokens": usage.tokens_out,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": usage.tokens_in + usage.tokens_out,
    }


def response_shell(request_id: str, model: str, created_at: int, echo: dict[str, Any]) -> dict[str, Any]:
    """A response in progress, without output or usage: a stream's `response.created` carries it."""
    return {
        "id": response_id(request_id),
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "previous_response_id": None,
        "usage": None,
        **echo,
    }


def status_of(finish_reason: Any) -> tuple[str, dict[str, str] | None]:
    """(status, incomplete_details)."""
    reason = INCOMPLETE_REASONS.get(finish_reason)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def finished(
    shell: dict[str, Any], output: list[dict[str, Any]], finish_reason: Any, usage: Usage
) -> dict[str, Any]:
    status, details = status_of(finish_reason)
    return {
        **shell,
        "status": status,
        "incomplete_details": details,
        "output": output,
        "usage": responses_usage(usage),
    }


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def function_call_item(item_id: str, call: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def responses_answer(
    data: dict[str, Any], *, shell: dict[str, Any], request_id: str, usage: Usage
) -> dict[str, Any]:
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = as_object(choice.get("message"))
    finish_reason = choice.get("finish_reason")
    item_status = "incomplete" if finish_reason in INCOMPLETE_REASONS else "completed"
    output: list[dict[str, Any]] = []
    text = message.get("content") or message.get("refusal")
    if isinstance(text, list):  # a few servers answer in content parts
        text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
    if isinstance(text, str) and text:
        output.append(message_item(message_item_id(request_id), text, item_status))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = as_object(call).get("function")
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # a few servers send the arguments as an object
            arguments = orjson.dumps(arguments).decode()
        output.append(
            function_call_item(
                function_item_id(),
                call.get("id") or call_id(),
                function.get("name") or "",
                arguments if isinstance(arguments, str) else "{}",
                "completed",
            )
        )
    return finished(shell, output, finish_reason, usage)
