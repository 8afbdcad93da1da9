"""Anthropic's Messages API (`POST {base_url}/messages`) behind the OpenAI chat dialect.

Requests: OpenAI chat bodies become Messages bodies (`request_body`): system and developer
messages → `system`; user and assistant text, images (data URLs → base64 sources, http(s) URLs →
url sources), assistant tool_calls → tool_use blocks, tool messages → tool_result blocks (turns of
one role in a row are merged, tool results first); tools → `tools` with `input_schema`; tool_choice,
parallel_tool_calls, stop → stop_sequences, temperature, top_p, user → metadata.user_id; max_tokens
(which Anthropic requires) is the request's or the model's default, the same bound the hold priced.
Answers (`chat_completion`) and streams (`AnthropicChatStream`) come back as OpenAI chat completions
and chunks, with stop_reason → finish_reason and usage in OpenAI's shape: prompt_tokens includes the
cache reads and writes, which are kept (prompt_tokens_details, and Anthropic's own top-level names)
so pricing sees them. Only chat is served: Anthropic has no completions, embeddings or images.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.pricing.cost import Operation
from tollgate.gateway.providers.base import (
    Provider,
    UpstreamRequest,
    UpstreamStream,
    UpstreamTarget,
    refused_message,
)
from tollgate.gateway.providers.documents import DOCS_MARK, TEXT_FORMATS, doc_bytes

ANTHROPIC_VERSION = "2023-06-01"
MESSAGES_PATH = "/messages"
FALLBACK_MAX_TOKENS = 4096  # a model always has a default; this is for one that says 0

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# Anthropic's error types, as OpenAI's envelope names them (its `code` keeps Anthropic's type).
ERROR_TYPES = {
    "invalid_request_error": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "not_found_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "rate_limit_error": "rate_limit_error",
    "overloaded_error": "api_error",
    "api_error": "api_error",
}
# Fields of Anthropic's own that a caller may send as they are (e.g. through seed 003's
# additional_params); every other OpenAI field that Anthropic lacks is dropped (docs/providers.md).
NATIVE_FIELDS = ("top_k", "thinking", "metadata", "service_tier")


class Anthropic(Provider):
    lean = False  # its calls go through the pooled httpx client

    def supports(self, operation: Operation) -> bool:
        return operation is Operation.CHAT

    def request(
        self, target: UpstreamTarget, operation: Operation, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        payload.pop(DOCS_MARK, None)  # doc parts go up as document blocks (_document)
        body = request_body(
            payload, target.upstream_model, target.max_tokens_default or FALLBACK_MAX_TOKENS, stream=stream
        )
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return UpstreamRequest(target.api_base + MESSAGES_PATH, orjson.dumps(body), headers)

    def answer(self, operation: Operation, data: dict[str, Any]) -> dict[str, Any]:
        return chat_completion(data)

    def stream(self, operation: Operation, upstream: UpstreamStream) -> UpstreamStream:
        return AnthropicChatStream(upstream)

    def error_body(self, status_code: int, body: bytes) -> bytes:
        return orjson.dumps(openai_error(status_code, body))

    def error_message(self, status_code: int, body: bytes) -> str:
        return refused_message(body, status_code)


# -- OpenAI chat body → Messages body ----------------------------------------------------------------


def request_body(
    payload: dict[str, Any], upstream_model: str, default_max_tokens: int, *, stream: bool
) -> dict[str, Any]:
    max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens") or default_max_tokens
    system, messages = _messages(payload.get("messages"))
    body: dict[str, Any] = {"model": upstream_model, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    if stream:
        body["stream"] = True
    for name in ("temperature", "top_p"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    stop = payload.get("stop")
    if isinstance(stop, str) and stop:
        body["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        body["stop_sequences"] = [s for s in stop if isinstance(s, str) and s]
    n = payload.get("n")
    if n is not None and n != 1:
        raise InvalidRequest(
            "This model's provider (anthropic) answers one choice: 'n' must be 1.", param="n"
        )
    tools = payload.get("tools")
    if tools:
        body["tools"] = [_tool(tool, i) for i, tool in enumerate(_list(tools, "tools"))]
    tool_choice = _tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
    # Anthropic refuses a tool_choice without tools; "none" with no tools offered means nothing
    if tool_choice is not None and ("tools" in body or tool_choice["type"] != "none"):
        body["tool_choice"] = tool_choice
    user = payload.get("user")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    for name in NATIVE_FIELDS:
        if payload.get(name) is not None:
            body[name] = payload[name]
    return body


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be an array.", param=param)
    return value


def _messages(value: Any) -> tuple[list[dict[str, Any]] | str, list[dict[str, Any]]]:
    """(system, messages): the system prompt and the turns, one role per turn."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(_list(value, "messages")):
        param = f"messages[{i}]"
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_text_blocks(content, param))
            continue
        if role == "user":
            blocks = _user_blocks(content, param)
        elif role == "assistant":
            blocks = _assistant_blocks(message, param)
        elif role == "tool":
            blocks, role = [_tool_result(message, param)], "user"
        else:
            raise InvalidRequest(
                f"Role {role!r} is not supported by this model's provider (anthropic).", param=f"{param}.role"
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            # a user turn after tool results: the results must come first in the merged turn
            turns[-1]["content"] = previous + blocks
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest("At least one user or assistant message is required.", param="messages")
    if all("cache_control" not in block for block in system):
        return "\n\n".join(block["text"] for block in system), turns
    return system, turns


def _text_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(_list(content, f"{param}.content")):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest("Only text parts are allowed here.", param=f"{param}.content[{j}]")
        if part["text"]:
            blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
    return blocks


def _user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return _text_blocks(content, param)
    blocks = []
    for j, part in enumerate(_list(content, f"{param}.content")):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"{param}.content[{j}]"
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
        elif kind == "image_url":
            blocks.append(_with_cache_control(_image(part.get("image_url"), where), part))
        elif kind == "doc":
            blocks.append(_document(part, where))
        else:
            raise InvalidRequest(
                f"Content part type {kind!r} is not supported by this model's provider (anthropic).",
                param=where,
            )
    return blocks


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
            f"This model's provider (anthropic) takes pdf, txt, md, csv or html documents, "
            f"not {doc.get('format')}.",
            param=f"{param}.doc.format",
        )
    return {"type": "document", "source": source, "title": doc.get("name")}


def _with_cache_control(block: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """A part's `cache_control` (as OpenAI-compatible proxies of Anthropic pass it) is kept."""
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _assistant_blocks(message: dict[str, Any], param: str) -> list[dict[str, Any]]:
    blocks = _text_blocks(message.get("content"), param) if message.get("content") is not None else []
    calls = message.get("tool_calls")
    for j, call in enumerate(_list(calls, f"{param}.tool_calls") if calls else []):
        where = f"{param}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest("A tool call needs a function name.", param=f"{where}.function")
        arguments = function.get("arguments") or "{}"
        try:
            tool_input = orjson.loads(arguments) if isinstance(arguments, str) else arguments
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "A tool call's arguments must be a JSON object.", param=f"{where}.function.arguments"
            ) from None
        if not isinstance(tool_input, dict):
            raise InvalidRequest(
                "A tool call's arguments must be a JSON object.", param=f"{where}.function.arguments"
            )
        blocks.append(
            {"type": "tool_use", "id": call.get("id"), "name": function["name"], "input": tool_input}
        )
    return blocks


def _tool_result(message: dict[str, Any], param: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest("A tool message needs its tool_call_id.", param=f"{param}.tool_call_id")
    content = message.get("content")
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    if isinstance(content, str):
        result["content"] = content
    elif content is not None:
        result["content"] = _text_blocks(content, param)
    return result


def _tool(tool: Any, i: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(
            "Only function tools are supported by this model's provider (anthropic).", param=f"tools[{i}]"
        )
    out: dict[str, Any] = {
        "name": function["name"],
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if isinstance(function.get("description"), str):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None:
        out: dict[str, Any] | None = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
        and isinstance(choice["function"].get("name"), str)
    ):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequest(
            "'tool_choice' must be 'auto', 'required', 'none' or a function.", param="tool_choice"
        )
    if parallel is False:
        out = out or {"type": "auto"}
        if out["type"] != "none":
            out["disable_parallel_tool_use"] = True
    return out


# -- Messages answer → OpenAI chat completion ---------------------------------------------------------


def finish_reason(stop_reason: Any) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def openai_usage(usage: Any) -> dict[str, Any] | None:
    """Anthropic's usage in OpenAI's shape: its input_tokens exclude the cache reads and writes,
    OpenAI's prompt_tokens include them (tollgate.gateway.completions.tokens.reported_usage)."""
    if not isinstance(usage, dict) or "output_tokens" not in usage:
        return None
    read = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + read + written
    completion = _count(usage.get("output_tokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    }


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()},
    }


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
            calls.append(_tool_call(block))
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    answer: dict[str, Any] = {
        "id": message.get("id"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason(message.get("stop_reason")) or "stop",
                "logprobs": None,
            }
        ],
    }
    usage = openai_usage(message.get("usage"))
    if usage is not None:
        answer["usage"] = usage
    return answer


def openai_error(status_code: int, body: bytes) -> dict[str, Any]:
    """Anthropic's `{"type": "error", "error": {"type", "message"}}` in OpenAI's envelope."""
    kind = None
    try:
        data = orjson.loads(body)
        kind = data["error"]["type"]
    except (ValueError, KeyError, TypeError):
        pass
    if not isinstance(kind, str):
        kind = "rate_limit_error" if status_code == 429 else "invalid_request_error"
    error_type = ERROR_TYPES.get(kind, "invalid_request_error")
    code = "rate_limit_exceeded" if status_code == 429 else kind
    message = refused_message(body, status_code)
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


# -- Messages stream → OpenAI chat chunks -------------------------------------------------------------


class StreamTranslator:
    """Anthropic's event sequence (message_start, content_block_start/delta/stop, message_delta,
    message_stop, ping, error) in, OpenAI chat chunks out; pure, one per stream."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = int(time.time())
        self.usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # content block index → tool call index

    def feed(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "message_start":
            message = _dict(event.get("message"))
            self.id = message.get("id") or self.id
            self.model = message.get("model") or self.model
            self._merge_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block"))
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), event.get("delta"))
        if kind == "message_delta":
            delta = _dict(event.get("delta"))
            self._merge_usage(event.get("usage"))
            reason = finish_reason(delta.get("stop_reason"))
            return [self._chunk({}, reason or "stop")]
        if kind == "message_stop":
            usage = openai_usage(self.usage)
            return [] if usage is None else [self._frame(choices=[], usage=usage)]
        if kind == "error":
            error = _dict(event.get("error"))
            body = orjson.dumps({"error": error})
            return [openai_error(529 if error.get("type") == "overloaded_error" else 500, body)]
        return []  # ping, content_block_stop and event types added later

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self.usage.update({k: v for k, v in usage.items() if isinstance(v, int)})

    def _block_start(self, index: Any, block: Any) -> list[dict[str, Any]]:
        if not isinstance(block, dict):
            return []
        kind = block.get("type")
        if kind == "tool_use" and isinstance(index, int):
            position = self._tools[index] = len(self._tools)
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        return []

    def _block_delta(self, index: Any, delta: Any) -> list[dict[str, Any]]:
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json") and index in self._tools:
            call = {"index": self._tools[index], "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        return []  # signature_delta, citations_delta

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return self._frame(choices=[{"index": 0, "delta": delta, "finish_reason": finish}])

    def _frame(self, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            **fields,
        }


def _event_data(event: bytes) -> dict[str, Any] | None:
    """The JSON object of one server-sent event (Anthropic names its type in the data too)."""
    data = b"\n".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))
    if not data:
        return None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


class AnthropicChatStream:
    """The upstream's Messages stream, read as OpenAI chat chunks (`data: {...}` … `data: [DONE]`);
    the gateway's relay then treats it as any OpenAI-compatible stream. Transport errors pass
    through, so a stream cut mid-way is billed by the relay's one rule."""

    def __init__(self, upstream: UpstreamStream) -> None:
        self._upstream = upstream
        self.translator = StreamTranslator()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        buffer = b""
        async for raw in self._upstream.aiter_bytes():
            buffer += raw
            if b"\r" in buffer:
                buffer = buffer.replace(b"\r\n", b"\n")
            while (cut := buffer.find(b"\n\n")) >= 0:
                out = self._translate(buffer[:cut])
                buffer = buffer[cut + 2 :]
                if out:
                    yield out
        if buffer.strip():
            out = self._translate(buffer.strip(b"\n"))
            if out:
                yield out

    def _translate(self, event: bytes) -> bytes:
        data = _event_data(event)
        if data is None:
            return b""
        out = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in self.translator.feed(data))
        if data.get("type") == "message_stop":
            out += b"data: [DONE]\n\n"
        return out

    async def aclose(self) -> None:
        await self._upstream.aclose()
