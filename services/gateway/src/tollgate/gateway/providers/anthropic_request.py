"""OpenAI chat body → Anthropic's Messages body (`request_body`).

System and developer messages → `system`; user and assistant text, images (data URLs → base64
sources, http(s) URLs → url sources), doc parts → document blocks, assistant tool_calls → tool_use
blocks, tool messages → tool_result blocks (turns of one role in a row are merged, tool results
first: content_blocks); tools → `tools` with `input_schema`; tool_choice, parallel_tool_calls,
stop → stop_sequences, temperature, top_p, user → metadata.user_id; max_tokens (which Anthropic
requires) is the request's or the model's default, the same bound the hold priced.
"""

from __future__ import annotations

from typing import Any

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.providers import content_blocks as blocks
from tollgate.gateway.providers.documents import TEXT_FORMATS, doc_bytes

PROVIDER = "anthropic"
# Fields of Anthropic's own that a caller may send as they are (e.g. through IndoxRouter's
# additional_params); every other OpenAI field that Anthropic lacks is dropped (docs/providers.md).
NATIVE_FIELDS = ("top_k", "thinking", "metadata", "service_tier")
TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none", "function": "tool"}


class MessagesBlocks(blocks.BlockDialect):
    provider = PROVIDER

    def text(self, text: str, part: dict[str, Any]) -> dict[str, Any]:
        return _with_cache_control({"type": "text", "text": text}, part)

    def image(self, part: dict[str, Any], where: str) -> dict[str, Any]:
        return _with_cache_control(_image(part.get("image_url"), where), part)

    def document(self, part: dict[str, Any], where: str) -> dict[str, Any]:
        return _document(part, where)

    def tool_use(self, call_id: Any, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
        return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input}

    def tool_result(self, call_id: str, content: Any, param: str) -> dict[str, Any]:
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
        if isinstance(content, str):
            result["content"] = content
        elif content is not None:
            result["content"] = blocks.text_blocks(content, param, self)
        return result


MESSAGES_BLOCKS = MessagesBlocks()


def request_body(
    payload: dict[str, Any], upstream_model: str, default_max_tokens: int, *, stream: bool
) -> dict[str, Any]:
    max_tokens = blocks.max_tokens(payload, default_max_tokens)
    system, messages = _system_and_turns(payload.get("messages"))
    body: dict[str, Any] = {"model": upstream_model, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    if stream:
        body["stream"] = True
    for name in ("temperature", "top_p"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    stop = blocks.stop_sequences(payload.get("stop"))
    if stop is not None:
        body["stop_sequences"] = stop
    blocks.check_one_choice(payload, PROVIDER)
    tools = payload.get("tools")
    if tools:
        body["tools"] = [_tool(tool, i) for i, tool in enumerate(blocks.array(tools, "tools"))]
    tool_choice = _tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
    # Anthropic refuses a tool_choice without tools; "none" with no tools offered means nothing
    if tool_choice is not None and ("tools" in body or tool_choice["type"] != "none"):
        body["tool_choice"] = tool_choice
    output = blocks.json_output_tool(payload.get("response_format"))
    if output is not None:  # no JSON mode in the Messages API: a tool holds the answer
        body.setdefault("tools", []).append(_tool(output, len(body.get("tools", []))))
        if not tools:
            body["tool_choice"] = {"type": "tool", "name": blocks.JSON_TOOL}
    user = payload.get("user")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    for name in NATIVE_FIELDS:
        if payload.get(name) is not None:
            body[name] = payload[name]
    return body


def _system_and_turns(messages: Any) -> tuple[list[dict[str, Any]] | str, list[dict[str, Any]]]:
    """The system prompt is sent as one string unless a part of it asks to be cached."""
    system, turns = blocks.turns(messages, MESSAGES_BLOCKS)
    if all("cache_control" not in block for block in system):
        return "\n\n".join(block["text"] for block in system), turns
    return system, turns


def _image(image_url: Any, param: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise InvalidRequest("'image_url.url' must be a string.", param=f"{param}.image_url.url")
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        media_type, _, encoding = head.partition(";")
        if not sep or encoding != "base64" or not media_type.startswith("image/"):
            raise InvalidRequest(
                "An image data URL must be data:image/<type>;base64,<data>.", param=f"{param}.image_url.url"
            )
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("'image_url.url' must be an http(s) or data URL.", param=f"{param}.image_url.url")


def _document(part: dict[str, Any], param: str) -> dict[str, Any]:
    """A doc part (normalised by providers.documents): PDFs as base64 sources, text as text sources."""
    doc = part.get("doc")
    if not isinstance(doc, dict) or not isinstance(doc.get("source"), dict):
        raise InvalidRequest("A doc part needs a 'doc' object.", param=param)
    if doc.get("format") == "pdf":
        source = {"type": "base64", "media_type": "application/pdf", "data": doc["source"]["bytes"]}
    elif doc.get("format") in TEXT_FORMATS:
        source = {"type": "text", "media_type": "text/plain", "data": doc_bytes(part).decode()}
    else:
        raise InvalidRequest(
            f"This model's provider ({PROVIDER}) takes pdf, txt, md, csv or html documents, "
            f"not {doc.get('format')}.",
            param=f"{param}.doc.format",
        )
    return {"type": "document", "source": source, "title": doc.get("name")}


def _with_cache_control(block: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """A part's `cache_control` (as OpenAI-compatible proxies of Anthropic pass it) is kept."""
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _tool(tool: Any, i: int) -> dict[str, Any]:
    function = blocks.function_tool(tool, i, PROVIDER)
    out: dict[str, Any] = {"name": function.name, "input_schema": function.parameters}
    if function.description is not None:
        out["description"] = function.description
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    requested = blocks.tool_choice(choice)
    out: dict[str, Any] | None = None
    if requested is not None:
        out = {"type": TOOL_CHOICES[requested.mode]}
        if requested.name is not None:
            out["name"] = requested.name
    if parallel is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out
