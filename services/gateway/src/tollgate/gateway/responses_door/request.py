"""A Responses API request, checked field by field and turned into the OpenAI chat request that the
operations pipeline sends upstream (input_items.py does `input`; tools.py tools and text formats).

The gateway keeps no conversation state: what needs it (`previous_response_id`, `conversation`,
stored prompts, `background`) is refused, so a client learns at once rather than getting an answer
without its context. `store` is accepted either way, as OpenAI's default is true, and nothing is
stored; the response echoes the `store` it was sent. Any field this door does not know is refused
as OpenAI refuses unknown parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tollgate.gateway.responses_door.input_items import chat_messages, invalid
from tollgate.gateway.responses_door.tools import chat_response_format, chat_tool_choice, chat_tools

# accepted, and changing nothing a chat upstream could act on (cache and routing hints, stream
# obfuscation): read, then not forwarded
HINTS = frozenset(
    {"prompt_cache_key", "prompt_cache_retention", "safety_identifier", "service_tier", "stream_options"}
)
# refused: each needs state or machinery the gateway does not have
REFUSED = {
    "previous_response_id": "stored responses are not kept by this gateway: send the whole "
    "conversation in 'input' (earlier output items may be sent back as input items).",
    "conversation": "conversations are not kept by this gateway: send the whole conversation in 'input'.",
    "prompt": "stored prompt templates are not supported: send 'instructions' and 'input'.",
    "context_management": "server-side compaction is not supported.",
    "max_tool_calls": "is not supported: only function tools, which the client runs, are offered.",
}
KNOWN = frozenset(
    {
        "model",
        "input",
        "instructions",
        "max_output_tokens",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "metadata",
        "user",
        "stream",
        "store",
        "background",
        "include",
        "truncation",
        "top_logprobs",
        "reasoning",
    }
    | HINTS
    | REFUSED.keys()
)


@dataclass(slots=True)
class ResponsesRequest:
    model: str
    max_output_tokens: int | None
    stream: bool
    payload: dict[str, Any]  # the OpenAI chat body (the pipeline sets its model and stream)
    echo: dict[str, Any] = field(default_factory=dict)  # what the Response object repeats back


def parse_responses_request(body: dict[str, Any]) -> ResponsesRequest:
    _refuse_what_cannot_be_honoured(body)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("model", "is required and must be a non-empty string.")
    payload: dict[str, Any] = {"messages": chat_messages(body.get("instructions"), body.get("input"))}
    tools, echoed_tools = chat_tools(body.get("tools"))
    if tools:
        payload["tools"] = tools
    tool_choice = chat_tool_choice(body.get("tool_choice"), tools)
    if tool_choice is not None:
        payload["tool_choice"] = tool_choice
    parallel = _boolean(body, "parallel_tool_calls")
    if parallel is not None and tools:
        payload["parallel_tool_calls"] = parallel
    text = body.get("text")
    if text is not None and not isinstance(text, dict):
        raise invalid("text", "must be an object.")
    text_format = (text or {}).get("format")
    response_format = chat_response_format(text_format)
    if response_format is not None:
        payload["response_format"] = response_format
    max_output_tokens = _positive_int(body, "max_output_tokens")
    if max_output_tokens is not None:
        payload["max_tokens"] = max_output_tokens
    for name, top in (("temperature", 2), ("top_p", 1)):
        value = body.get(name)
        if value is not None:
            if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= top:
                raise invalid(name, f"must be a number between 0 and {top}.")
            payload[name] = value
    effort = _reasoning_effort(body.get("reasoning"))
    if effort is not None:
        payload["reasoning_effort"] = effort
    user = body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise invalid("user", "must be a string.")
        payload["user"] = user
    stream = _boolean(body, "stream") or False
    store = _boolean(body, "store")
    echo = {
        "instructions": body.get("instructions"),
        "max_output_tokens": max_output_tokens,
        "temperature": body.get("temperature", 1.0),
        "top_p": body.get("top_p", 1.0),
        "tools": echoed_tools,
        "tool_choice": body.get("tool_choice", "auto"),
        "parallel_tool_calls": True if parallel is None else parallel,
        "text": {"format": text_format or {"type": "text"}},
        "metadata": _metadata(body.get("metadata")),
        "store": True if store is None else store,  # OpenAI's default; nothing is stored either way
        "user": user,
        "reasoning": {"effort": effort, "summary": None},
    }
    return ResponsesRequest(model, max_output_tokens, stream, payload, echo)


def _refuse_what_cannot_be_honoured(body: dict[str, Any]) -> None:
    for name in body:
        if name not in KNOWN:
            raise invalid(name, "is not a parameter this gateway's Responses API knows.")
    for name, why in REFUSED.items():
        if body.get(name) is not None:
            raise invalid(name, why)
    if _boolean(body, "background"):
        raise invalid("background", "background responses are not supported: they need stored responses.")
    include = body.get("include")
    if include is not None and (not isinstance(include, list) or include):
        raise invalid("include", "extra output data (logprobs, reasoning, tool results) is not offered.")
    truncation = body.get("truncation")
    if truncation not in (None, "disabled"):
        raise invalid("truncation", "only 'disabled' is supported: the gateway does not cut 'input'.")
    top_logprobs = body.get("top_logprobs")
    if top_logprobs not in (None, 0):
        raise invalid("top_logprobs", "log probabilities are not offered by this door.")


def _boolean(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is not None and not isinstance(value, bool):
        raise invalid(name, "must be a boolean.")
    return value


def _positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise invalid(name, "must be a positive integer.")
    return value


def _reasoning_effort(reasoning: Any) -> str | None:
    """`reasoning.effort` is chat's `reasoning_effort`; a summary is never produced, so asked for
    or not it is left out (the response's reasoning.summary is null)."""
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise invalid("reasoning", "must be an object.")
    effort = reasoning.get("effort")
    if effort is not None and not isinstance(effort, str):
        raise invalid("reasoning.effort", "must be a string.")
    return effort


def _metadata(metadata: Any) -> dict[str, str]:
    """Echoed only: the usage event has no place for it (OpenAI's limits are checked)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or len(metadata) > 16:
        raise invalid("metadata", "must be an object of at most 16 string pairs.")
    for key, value in metadata.items():
        if len(key) > 64 or not isinstance(value, str) or len(value) > 512:
            raise invalid(f"metadata.{key}", "keys are up to 64 characters, values strings up to 512.")
    return metadata
