"""Pure translations between Anthropic's Messages API and OpenAI's chat completions.

Inbound: Anthropic's `system`, `messages` (string or content blocks), `tools` and `tool_choice`
become an OpenAI chat request's fields. Outbound: an OpenAI answer's finish reason and the usage the
gateway metered become Anthropic's `stop_reason` and `usage`; the whole message is in answer.py.

What cannot be honoured is refused with InvalidRequest naming the field in Anthropic's dotted form
(`messages.0.content.1.source`): Anthropic's error envelope has no `param`, so the message says where.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.pricing.cost import Usage

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
# blocks a client sends back from an earlier answer that no OpenAI-compatible model can take:
# another model's signed reasoning; they are dropped, as Anthropic itself drops them from old turns
DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def as_object(value: Any) -> dict[str, Any]:
    """An upstream's JSON object, or an empty one where it sent something else."""
    return value if isinstance(value, dict) else {}


def invalid(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}", param=path)


def _string(block: dict[str, Any], key: str, where: str, *, empty: bool = False) -> str:
    value = block.get(key)
    if not isinstance(value, str) or (not empty and not value):
        raise invalid(f"{where}.{key}", "is required and must be a non-empty string.")
    return value


# -- inbound: Anthropic request -> OpenAI chat request ------------------------------------------


def system_text(system: Any) -> str | None:
    """`system` as one string: a string, or text blocks joined by blank lines."""
    if system is None or isinstance(system, str):
        return system or None
    if not isinstance(system, list):
        raise invalid("system", "must be a string or an array of text blocks.")
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid(f"system.{i}", "system blocks must be text blocks ({'type': 'text', 'text': ...}).")
        texts.append(_string(block, "text", f"system.{i}", empty=True))
    return "\n\n".join(texts) or None


def openai_messages(system: Any, messages: Any) -> list[dict[str, Any]]:
    """The OpenAI `messages`: the system prompt first, then each turn translated."""
    out: list[dict[str, Any]] = []
    text = system_text(system)
    if text:
        out.append({"role": "system", "content": text})
    if not isinstance(messages, list) or not messages:
        raise invalid("messages", "must be a non-empty array of messages.")
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        if not isinstance(message, dict):
            raise invalid(path, "each message must be an object with 'role' and 'content'.")
        role = message.get("role")
        blocks = _blocks(message.get("content"), f"{path}.content")
        if role == "user":
            out.extend(_user_turn(blocks, path))
        elif role == "assistant":
            out.append(_assistant_turn(blocks, path))
        else:
            raise invalid(f"{path}.role", "must be 'user' or 'assistant' (the system prompt is 'system').")
    return out


def _blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise invalid(where, "must be a string or a non-empty array of content blocks.")
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"{where}.{j}", "each content block must be an object with a 'type'.")
    return content


def _user_turn(blocks: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    """One user turn: its tool results become OpenAI `tool` messages, which must come right after
    the assistant's tool calls, then the rest as one user message."""
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where, kind = f"{path}.content.{j}", block["type"]
        if kind == "text":
            parts.append({"type": "text", "text": _string(block, "text", where, empty=True)})
        elif kind == "image":
            parts.append(image_part(block, where))
        elif kind == "document":
            parts.append({"type": "text", "text": document_text(block, where)})
        elif kind == "tool_result":
            message, images = _tool_result(block, where)
            tool_messages.append(message)
            parts.extend(images)  # OpenAI tool messages carry text only: images follow as the user's
        elif kind not in DROPPED_BLOCKS:
            raise invalid(f"{where}.type", f"the block type '{kind}' is not supported in a user message.")
    if parts:
        texts = [p["text"] for p in parts if p["type"] == "text"]
        single = len(parts) == 1 and len(texts) == 1  # a plain string suits every upstream
        tool_messages.append({"role": "user", "content": texts[0] if single else parts})
    return tool_messages


def _assistant_turn(blocks: list[dict[str, Any]], path: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where, kind = f"{path}.content.{j}", block["type"]
        if kind == "text":
            texts.append(_string(block, "text", where, empty=True))
        elif kind == "tool_use":
            arguments = block.get("input", {})
            if not isinstance(arguments, dict):
                raise invalid(f"{where}.input", "must be an object.")
            function = {"name": _string(block, "name", where), "arguments": orjson.dumps(arguments).decode()}
            calls.append({"id": _string(block, "id", where), "type": "function", "function": function})
        elif kind not in DROPPED_BLOCKS:
            raise invalid(f"{where}.type", f"the block type '{kind}' is not supported from the assistant.")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if calls:
        message["content"] = message["content"] or None
        message["tool_calls"] = calls
    return message


def image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{where}.source", "is required: {'type': 'base64' | 'url', ...}.")
    kind = source.get("type")
    if kind == "base64":
        media_type = source.get("media_type")
        if media_type not in IMAGE_MEDIA_TYPES:
            allowed = ", ".join(sorted(IMAGE_MEDIA_TYPES))
            raise invalid(f"{where}.source.media_type", f"must be one of {allowed}.")
        url = f"data:{media_type};base64,{_string(source, 'data', f'{where}.source')}"
    elif kind == "url":
        url = _string(source, "url", f"{where}.source")
        if not url.startswith(("https://", "http://")):
            raise invalid(f"{where}.source.url", "must be an http(s) URL.")
    else:
        raise invalid(f"{where}.source.type", "must be 'base64' or 'url' (file ids are not supported).")
    return {"type": "image_url", "image_url": {"url": url}}


def document_text(block: dict[str, Any], where: str) -> str:
    """A document's text, its title and context first. Only text sources: the gateway extracts no
    text from PDFs, and a model behind an OpenAI-compatible API cannot read a PDF's bytes."""
    source = block.get("source")
    if not isinstance(source, dict):
        raise invalid(f"{where}.source", "is required: {'type': 'text', 'media_type': 'text/plain', ...}.")
    kind = source.get("type")
    if kind == "text":
        text = _string(source, "data", f"{where}.source", empty=True)
    elif kind == "content":
        content = source.get("content")
        items = _blocks(content, f"{where}.source.content")
        if any(item["type"] != "text" for item in items):
            raise invalid(f"{where}.source.content", "only text blocks are supported in a document.")
        text = "\n\n".join(_string(item, "text", f"{where}.source.content", empty=True) for item in items)
    else:
        raise invalid(
            f"{where}.source",
            "only text documents are supported: this gateway cannot extract text from a PDF or a "
            "file. Send {'type': 'text', 'media_type': 'text/plain', 'data': '<the text>'} instead.",
        )
    heading = [v for v in (block.get("title"), block.get("context")) if isinstance(v, str) and v]
    return "\n\n".join([*heading, text])


def _tool_result(block: dict[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    call_id = _string(block, "tool_use_id", where)
    content = block.get("content")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, item in enumerate(content):
            inner = f"{where}.content.{k}"
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "text":
                texts.append(_string(item, "text", inner, empty=True))
            elif kind == "image":
                images.append(image_part(item, inner))
            elif kind == "document":
                texts.append(document_text(item, inner))
            else:
                raise invalid(inner, "a tool result may hold text, image and document blocks only.")
    elif content is not None:
        raise invalid(f"{where}.content", "must be a string or an array of content blocks.")
    text = "\n\n".join(texts)
    if block.get("is_error") is True:  # OpenAI has no error flag: the model reads it in the text
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def openai_tools(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise invalid("tools", "must be an array of tools.")
    out = []
    for i, tool in enumerate(tools):
        path = f"tools.{i}"
        if not isinstance(tool, dict):
            raise invalid(path, "each tool must be an object with 'name' and 'input_schema'.")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise invalid(f"{path}.type", f"the server tool '{kind}' is not supported, only client tools.")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise invalid(f"{path}.input_schema", "is required and must be a JSON schema object.")
        function: dict[str, Any] = {"name": _string(tool, "name", path), "parameters": schema}
        description = tool.get("description")
        if description is not None:
            function["description"] = _string(tool, "description", path, empty=True)
        out.append({"type": "function", "function": function})
    return out or None  # some upstreams refuse an empty `tools` array


def openai_tool_choice(choice: Any, tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    """OpenAI's `tool_choice` (and `parallel_tool_calls`) for Anthropic's `tool_choice`."""
    if choice is None:
        return {}
    kind = choice.get("type") if isinstance(choice, dict) else None
    names = {t["function"]["name"] for t in tools or []}
    fields: dict[str, Any]
    if kind == "auto":
        fields = {"tool_choice": "auto"}
    elif kind == "none":
        fields = {"tool_choice": "none"}
    elif kind == "any":
        fields = {"tool_choice": "required"}
    elif kind == "tool":
        name = _string(choice, "name", "tool_choice")
        if name not in names:
            raise invalid("tool_choice.name", f"no tool named '{name}' is in 'tools'.")
        fields = {"tool_choice": {"type": "function", "function": {"name": name}}}
    else:
        raise invalid("tool_choice.type", "must be one of 'auto', 'any', 'tool' or 'none'.")
    if kind in ("any", "tool") and not names:
        raise invalid("tool_choice", f"'{kind}' needs 'tools'.")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        fields["parallel_tool_calls"] = False
    return fields


# -- outbound: OpenAI answer -> Anthropic message ----------------------------------------------


def stop_reason(
    finish_reason: Any, matched: Any, tool_calls: bool, stop_sequences: list[str]
) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence). OpenAI's "stop" does not say whether a stop sequence ended the
    text; servers such as vLLM name the one that did in the choice's `stop_reason`, which is used."""
    if finish_reason == "stop" and isinstance(matched, str) and matched in stop_sequences:
        return "stop_sequence", matched
    if tool_calls and finish_reason != "length":
        return "tool_use", None  # some servers end a tool call with "stop"
    return STOP_REASONS.get(finish_reason, "end_turn"), None


def anthropic_usage(usage: Usage) -> dict[str, int]:
    """Anthropic's usage from what the gateway billed: its `input_tokens` excludes cache reads and
    writes, which OpenAI's `prompt_tokens` (and so the gateway's `tokens_in`) include."""
    return {
        "input_tokens": max(usage.tokens_in - usage.cached_in - usage.cache_write, 0),
        "output_tokens": usage.tokens_out,
        "cache_read_input_tokens": usage.cached_in,
        "cache_creation_input_tokens": usage.cache_write,
    }
