"""OpenAI chat body → Bedrock's Converse body (`request_body`).

System and developer messages → `system` text blocks; user and assistant text, images (data URLs
only → `image` {format, source: {bytes}}; http(s) image URLs are refused with a 400, the gateway
does not fetch them), doc parts → `document` blocks, assistant tool_calls → `toolUse`, tool
messages → `toolResult` (turns of one role in a row are merged: content_blocks);
max_tokens/temperature/top_p/stop → `inferenceConfig`; tools and tool_choice → `toolConfig`
(auto / required → any / a function → tool; "none" sends no tools).
"""

from __future__ import annotations

import base64
import re
from typing import Any

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.providers import content_blocks as blocks

PROVIDER = "bedrock-converse"
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
TOOL_CHOICES = {"auto": "auto", "required": "any"}  # "none" sends no tools at all


class ConverseBlocks(blocks.BlockDialect):
    provider = PROVIDER

    def text(self, text: str, part: dict[str, Any]) -> dict[str, Any]:
        return {"text": text}

    def image(self, part: dict[str, Any], where: str) -> dict[str, Any]:
        return _image(part.get("image_url"), where)

    def document(self, part: dict[str, Any], where: str) -> dict[str, Any]:
        return _document(part, where)

    def tool_use(self, call_id: Any, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
        return {"toolUse": {"toolUseId": call_id, "name": name, "input": tool_input}}

    def tool_result(self, call_id: str, content: Any, param: str) -> dict[str, Any]:
        texts = blocks.text_blocks(content, param, self)
        return {"toolResult": {"toolUseId": call_id, "content": texts or [{"text": ""}]}}


CONVERSE_BLOCKS = ConverseBlocks()


def request_body(payload: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    system, messages = blocks.turns(payload.get("messages"), CONVERSE_BLOCKS)
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    blocks.check_one_choice(payload, PROVIDER)
    inference: dict[str, Any] = {}
    max_tokens = blocks.max_tokens(payload, default_max_tokens)
    if max_tokens:
        inference["maxTokens"] = max_tokens
    if payload.get("temperature") is not None:
        inference["temperature"] = payload["temperature"]
    if payload.get("top_p") is not None:
        inference["topP"] = payload["top_p"]
    stop = blocks.stop_sequences(payload.get("stop"))
    if stop is not None:
        inference["stopSequences"] = stop
    if inference:
        body["inferenceConfig"] = inference
    tools = payload.get("tools")
    choice = payload.get("tool_choice")
    if tools and choice != "none":
        config: dict[str, Any] = {
            "tools": [_tool(tool, i) for i, tool in enumerate(blocks.array(tools, "tools"))]
        }
        if choice is not None:
            config["toolChoice"] = _tool_choice(choice)
        body["toolConfig"] = config
    output = blocks.json_output_tool(payload.get("response_format"))
    if output is not None:  # Converse has no JSON mode: a tool holds the answer
        config = body.setdefault("toolConfig", {"tools": []})
        config["tools"].append(_tool(output, len(config["tools"])))
        if "toolChoice" not in config and not (tools and choice != "none"):
            config["toolChoice"] = {"tool": {"name": blocks.JSON_TOOL}}
    return body


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


def _tool(tool: Any, i: int) -> dict[str, Any]:
    function = blocks.function_tool(tool, i, PROVIDER)
    spec: dict[str, Any] = {"name": function.name, "inputSchema": {"json": function.parameters}}
    if function.description is not None:
        spec["description"] = function.description
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> dict[str, Any]:
    """Only called with a choice other than "none" (which sends no tools)."""
    requested = blocks.tool_choice(choice)
    if requested is None or requested.mode not in (*TOOL_CHOICES, "function"):
        raise InvalidRequest(
            "'tool_choice' must be 'auto', 'required', 'none' or a function.", param="tool_choice"
        )
    if requested.name is not None:
        return {"tool": {"name": requested.name}}
    return {TOOL_CHOICES[requested.mode]: {}}
