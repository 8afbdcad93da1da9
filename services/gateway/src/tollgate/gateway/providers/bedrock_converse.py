"""Amazon Bedrock's Converse API (`POST {endpoint}/model/{modelId}/converse`, `/converse-stream`)
behind the OpenAI chat dialect, signed with SigV4 by botocore's signer.

Requests: system and developer messages → `system` text blocks; user and assistant text, images
(data URLs only → `image` {format, source: {bytes}}; http(s) image URLs are refused with a 400, the
gateway does not fetch them), assistant tool_calls → `toolUse`, tool messages → `toolResult` (turns
of one role in a row are merged); max_tokens/temperature/top_p/stop → `inferenceConfig`; tools and
tool_choice → `toolConfig` (auto / required → any / a function → tool; "none" sends no tools).
Answers and the binary event stream (`application/vnd.amazon.eventstream`) come back as OpenAI
chat completions and chunks, stopReason → finish_reason, usage in OpenAI's shape (prompt_tokens
includes cache reads and writes, kept in prompt_tokens_details for pricing).

Credentials: the catalog keeps `{region, accessKeyId, secretAccessKey, sessionToken}` encrypted
as the model's secret (catalog/service.py); it reaches this module as `target.api_key` (JSON).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.pricing.cost import Operation
from tollgate.gateway.providers.base import (
    Provider,
    UpstreamRequest,
    UpstreamStream,
    UpstreamTarget,
)
from tollgate.gateway.providers.documents import DOCS_MARK

PROVIDER = "bedrock-converse"
DEFAULT_REGION = "us-east-1"
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
# Bedrock's error types (x-amzn-ErrorType / the body's `__type`), as OpenAI's envelope names them.
ERROR_TYPES = {
    "ValidationException": "invalid_request_error",
    "ResourceNotFoundException": "invalid_request_error",
    "AccessDeniedException": "permission_error",
    "UnrecognizedClientException": "authentication_error",
    "ThrottlingException": "rate_limit_error",
    "ServiceQuotaExceededException": "rate_limit_error",
    "ModelNotReadyException": "api_error",
    "ServiceUnavailableException": "api_error",
    "InternalServerException": "api_error",
    "ModelTimeoutException": "api_error",
}
STATUS_TYPES = {400: "ValidationException", 403: "AccessDeniedException", 429: "ThrottlingException"}


def credentials(secret: str | None) -> dict[str, str]:
    """The model's credential bundle (JSON, as catalog/service.py stores it)."""
    if not secret:
        return {}
    try:
        data = orjson.loads(secret)
    except orjson.JSONDecodeError:
        return {"secretAccessKey": secret}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


class BedrockConverse(Provider):
    lean = False

    def supports(self, operation: Operation) -> bool:
        return operation is Operation.CHAT

    def request(
        self, target: UpstreamTarget, operation: Operation, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        payload.pop(DOCS_MARK, None)  # doc parts go up as document blocks (_document)
        body = orjson.dumps(request_body(payload, target.max_tokens_default))
        path = "/converse-stream" if stream else "/converse"
        url = f"{target.api_base}/model/{quote(target.upstream_model, safe='')}{path}"
        headers = {"content-type": "application/json", "accept": "application/json"}
        if stream:
            headers["accept"] = "application/vnd.amazon.eventstream"
        return UpstreamRequest(url, body, sign(url, body, headers, credentials(target.api_key)))

    def answer(self, operation: Operation, data: dict[str, Any]) -> dict[str, Any]:
        return chat_completion(data)

    def stream(self, operation: Operation, upstream: UpstreamStream) -> UpstreamStream:
        return ConverseChatStream(upstream)

    def error_body(self, status_code: int, body: bytes) -> bytes:
        return orjson.dumps(openai_error(status_code, body))

    def error_message(self, status_code: int, body: bytes) -> str:
        return openai_error(status_code, body)["error"]["message"]


def sign(url: str, body: bytes, headers: dict[str, str], creds: dict[str, str]) -> dict[str, str]:
    """SigV4 headers (Authorization, X-Amz-Date, X-Amz-Security-Token) for service `bedrock`."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    aws = Credentials(
        creds.get("accessKeyId", ""), creds.get("secretAccessKey", ""), creds.get("sessionToken") or None
    )
    SigV4Auth(aws, "bedrock", creds.get("region") or DEFAULT_REGION).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


# -- OpenAI chat body → Converse body -----------------------------------------------------------------


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be an array.", param=param)
    return value


def request_body(payload: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    system, messages = _messages(payload.get("messages"))
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    n = payload.get("n")
    if n is not None and n != 1:
        raise InvalidRequest(
            f"This model's provider ({PROVIDER}) answers one choice: 'n' must be 1.", param="n"
        )
    inference: dict[str, Any] = {}
    max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens") or default_max_tokens
    if max_tokens:
        inference["maxTokens"] = max_tokens
    if payload.get("temperature") is not None:
        inference["temperature"] = payload["temperature"]
    if payload.get("top_p") is not None:
        inference["topP"] = payload["top_p"]
    stop = payload.get("stop")
    if isinstance(stop, str) and stop:
        inference["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        inference["stopSequences"] = [s for s in stop if isinstance(s, str) and s]
    if inference:
        body["inferenceConfig"] = inference
    tools = payload.get("tools")
    choice = payload.get("tool_choice")
    if tools and choice != "none":
        config: dict[str, Any] = {"tools": [_tool(tool, i) for i, tool in enumerate(_list(tools, "tools"))]}
        if choice is not None:
            config["toolChoice"] = _tool_choice(choice)
        body["toolConfig"] = config
    return body


def _messages(value: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(_list(value, "messages")):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest("A message must be an object.", param=param)
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
                f"Role {role!r} is not supported by this model's provider ({PROVIDER}).",
                param=f"{param}.role",
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = turns[-1]["content"] + blocks
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise InvalidRequest("At least one user or assistant message is required.", param="messages")
    return system, turns


def _text_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks = []
    for j, part in enumerate(_list(content, f"{param}.content")):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest("Only text parts are allowed here.", param=f"{param}.content[{j}]")
        if part["text"]:
            blocks.append({"text": part["text"]})
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
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), where))
        elif kind == "doc":
            blocks.append(_document(part, where))
        else:
            raise InvalidRequest(
                f"Content part type {kind!r} is not supported by this model's provider ({PROVIDER}).",
                param=where,
            )
    return blocks


def _image(image_url: Any, param: str) -> dict[str, Any]:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    where = f"{param}.image_url.url"
    if not isinstance(url, str):
        raise InvalidRequest("'image_url.url' must be a string.", param=where)
    if not url.startswith("data:"):
        raise InvalidRequest(
            f"This model's provider ({PROVIDER}) takes images as data URLs only "
            "(data:image/<type>;base64,<data>); http(s) image URLs are not fetched.",
            param=where,
        )
    head, sep, data = url[5:].partition(",")
    media_type, _, encoding = head.partition(";")
    image_format = IMAGE_FORMATS.get(media_type.lower())
    if not sep or encoding != "base64" or image_format is None:
        raise InvalidRequest(
            "An image data URL must be data:image/(png|jpeg|gif|webp);base64,<data>.", param=where
        )
    try:
        base64.b64decode(data, validate=True)
    except ValueError:
        raise InvalidRequest("The image data URL is not valid base64.", param=where) from None
    # Converse's JSON carries blob members as base64 strings
    return {"image": {"format": image_format, "source": {"bytes": data}}}


def _document(part: dict[str, Any], param: str) -> dict[str, Any]:
    """A doc part (normalised by providers.documents) as a Converse document block; Bedrock allows
    only letters, digits, single spaces, hyphens, parentheses and brackets in its name."""
    doc = part.get("doc")
    if not isinstance(doc, dict) or not isinstance(doc.get("source"), dict):
        raise InvalidRequest("A doc part needs a 'doc' object.", param=param)
    name = " ".join(re.sub(r"[^A-Za-z0-9\s\-()\[\]]", " ", str(doc.get("name") or "")).split()) or "document"
    return {"document": {"format": doc["format"], "name": name, "source": {"bytes": doc["source"]["bytes"]}}}


def _assistant_blocks(message: dict[str, Any], param: str) -> list[dict[str, Any]]:
    blocks = _text_blocks(message.get("content"), param)
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
            tool_input = None
        if not isinstance(tool_input, dict):
            raise InvalidRequest(
                "A tool call's arguments must be a JSON object.", param=f"{where}.function.arguments"
            )
        blocks.append(
            {"toolUse": {"toolUseId": call.get("id"), "name": function["name"], "input": tool_input}}
        )
    return blocks


def _tool_result(message: dict[str, Any], param: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest("A tool message needs its tool_call_id.", param=f"{param}.tool_call_id")
    content = message.get("content")
    blocks = _text_blocks(content, param) if content is not None else []
    return {"toolResult": {"toolUseId": call_id, "content": blocks or [{"text": ""}]}}


def _tool(tool: Any, i: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(
            f"Only function tools are supported by this model's provider ({PROVIDER}).", param=f"tools[{i}]"
        )
    spec: dict[str, Any] = {
        "name": function["name"],
        "inputSchema": {"json": function.get("parameters") or {"type": "object", "properties": {}}},
    }
    if isinstance(function.get("description"), str):
        spec["description"] = function["description"]
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
        and isinstance(choice["function"].get("name"), str)
    ):
        return {"tool": {"name": choice["function"]["name"]}}
    raise InvalidRequest(
        "'tool_choice' must be 'auto', 'required', 'none' or a function.", param="tool_choice"
    )


# -- Converse answer → OpenAI chat completion ---------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def finish_reason(stop_reason: Any) -> str | None:
    return None if stop_reason is None else FINISH_REASONS.get(stop_reason, "stop")


def openai_usage(usage: Any) -> dict[str, Any] | None:
    """Converse's usage: inputTokens exclude cache reads and writes; OpenAI's prompt_tokens include them."""
    if not isinstance(usage, dict) or "outputTokens" not in usage:
        return None
    read = _count(usage.get("cacheReadInputTokens"))
    written = _count(usage.get("cacheWriteInputTokens"))
    prompt = _count(usage.get("inputTokens")) + read + written
    completion = _count(usage.get("outputTokens"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": written,
    }


def chat_completion(data: dict[str, Any]) -> dict[str, Any]:
    message = _dict(_dict(data.get("output")).get("message"))
    content = message.get("content")
    if not isinstance(content, list):
        raise ValueError("not a Converse answer")
    texts, reasoning, calls = [], [], []
    for block in content:
        block = _dict(block)
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif "toolUse" in block:
            use = _dict(block["toolUse"])
            calls.append(
                {
                    "id": use.get("toolUseId"),
                    "type": "function",
                    "function": {
                        "name": use.get("name"),
                        "arguments": orjson.dumps(use.get("input") or {}).decode(),
                    },
                }
            )
        elif "reasoningContent" in block:
            reasoning.append(_dict(_dict(block["reasoningContent"]).get("reasoningText")).get("text") or "")
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        reply["tool_calls"] = calls
    if reasoning:
        reply["reasoning_content"] = "".join(reasoning)
    answer: dict[str, Any] = {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": None,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": finish_reason(data.get("stopReason")) or "stop",
                "logprobs": None,
            }
        ],
    }
    usage = openai_usage(data.get("usage"))
    if usage is not None:
        answer["usage"] = usage
    return answer


def openai_error(status_code: int, body: bytes, error_type: str | None = None) -> dict[str, Any]:
    """Bedrock's `{"message": ...}` (its type in x-amzn-ErrorType or `__type`) in OpenAI's envelope."""
    message = None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        message = data.get("message") or data.get("Message")
        error_type = error_type or data.get("__type")
    if isinstance(error_type, str):
        error_type = error_type.split(":")[0].rsplit("#", 1)[-1]
    else:
        error_type = STATUS_TYPES.get(
            status_code, "InternalServerException" if status_code >= 500 else "ValidationException"
        )
    if not isinstance(message, str) or not message:
        message = f"The upstream model refused the request (HTTP {status_code})."
    kind = ERROR_TYPES.get(error_type, "api_error" if status_code >= 500 else "invalid_request_error")
    code = "rate_limit_exceeded" if status_code == 429 else error_type
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


# -- ConverseStream (binary event stream) → OpenAI chat chunks ---------------------------------------


class StreamTranslator:
    """Converse's events (messageStart, contentBlockStart/Delta/Stop, messageStop, metadata, and
    exceptions) in, OpenAI chat chunks out; pure, one per stream."""

    def __init__(self) -> None:
        self.id = "chatcmpl-" + uuid.uuid4().hex
        self.created = int(time.time())
        self._tools: dict[int, int] = {}  # content block index → tool call index
        self.done = False

    def feed(self, event_type: str, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event_type == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event_type == "contentBlockStart":
            start = _dict(_dict(event.get("start")).get("toolUse"))
            index = event.get("contentBlockIndex")
            if start and isinstance(index, int):
                position = self._tools[index] = len(self._tools)
                call = {
                    "index": position,
                    "id": start.get("toolUseId"),
                    "type": "function",
                    "function": {"name": start.get("name"), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            return []
        if event_type == "contentBlockDelta":
            delta = _dict(event.get("delta"))
            index = event.get("contentBlockIndex")
            if isinstance(delta.get("text"), str) and delta["text"]:
                return [self._chunk({"content": delta["text"]})]
            tool = _dict(delta.get("toolUse"))
            if tool.get("input") and index in self._tools:
                call = {"index": self._tools[index], "function": {"arguments": tool["input"]}}
                return [self._chunk({"tool_calls": [call]})]
            text = _dict(delta.get("reasoningContent")).get("text")
            if isinstance(text, str) and text:
                return [self._chunk({"reasoning_content": text})]
            return []
        if event_type == "messageStop":
            return [self._chunk({}, finish_reason(event.get("stopReason")) or "stop")]
        if event_type == "metadata":
            self.done = True
            usage = openai_usage(event.get("usage"))
            return [] if usage is None else [self._frame(choices=[], usage=usage)]
        return []  # contentBlockStop and event types added later

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return self._frame(choices=[{"index": 0, "delta": delta, "finish_reason": finish}])

    def _frame(self, **fields: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": None,
            **fields,
        }


class ConverseChatStream:
    """The upstream's event stream, read as OpenAI chat chunks (`data: {...}` … `data: [DONE]`).
    An exception event mid-stream becomes one OpenAI error object and ends the stream."""

    def __init__(self, upstream: UpstreamStream) -> None:
        self._upstream = upstream
        self.translator = StreamTranslator()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        buffer = EventStreamBuffer()
        finished = False
        async for raw in self._upstream.aiter_bytes():
            buffer.add_data(raw)
            out = b""
            for message in buffer:
                headers = message.headers
                try:
                    payload = orjson.loads(message.payload) if message.payload else {}
                except orjson.JSONDecodeError:
                    payload = {}
                if headers.get(":message-type") == "exception":
                    error = openai_error(500, message.payload, headers.get(":exception-type"))
                    out += b"data: " + orjson.dumps(error) + b"\n\n"
                    finished = True
                    break
                chunks = self.translator.feed(str(headers.get(":event-type", "")), _dict(payload))
                out += b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)
            if out:
                yield out
            if finished:
                return
        if self.translator.done:
            yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        await self._upstream.aclose()
