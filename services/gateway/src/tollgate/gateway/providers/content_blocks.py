"""OpenAI chat requests → a content-block dialect: the walk, the checks and the error messages that
Anthropic's Messages API (anthropic_request) and Bedrock's Converse API (bedrock_converse_request)
share. Both take the system prompt apart from the turns; both want one role per turn, so turns of
one role in a row are merged and tool messages become user turns of tool results; both hold text,
image and document blocks, tool uses and tool results. A `BlockDialect` says how its API writes
each block; the rest (which fields go where, what is refused) is decided here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import orjson

from tollgate.common.errors import InvalidRequest


class BlockDialect(ABC):
    """How one API writes a turn's blocks. `provider` names it in the errors callers see."""

    provider: str

    @abstractmethod
    def text(self, text: str, part: dict[str, Any]) -> dict[str, Any]:
        """A text block; `part` is the caller's content part ({} for string content)."""

    @abstractmethod
    def image(self, part: dict[str, Any], where: str) -> dict[str, Any]:
        """An `image_url` part as an image block (InvalidRequest for a URL it cannot take)."""

    @abstractmethod
    def document(self, part: dict[str, Any], where: str) -> dict[str, Any]:
        """A `doc` part, normalised by providers.documents, as a document block."""

    @abstractmethod
    def tool_use(self, call_id: Any, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
        """An assistant's tool call as a tool use block."""

    @abstractmethod
    def tool_result(self, call_id: str, content: Any, param: str) -> dict[str, Any]:
        """A tool message's content as a tool result block."""


def array(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be an array.", param=param)
    return value


def max_tokens(payload: dict[str, Any], default: int) -> Any:
    """The request's bound, else the model's default: the same bound the hold priced."""
    return payload.get("max_tokens") or payload.get("max_completion_tokens") or default


def stop_sequences(stop: Any) -> list[str] | None:
    """`stop` as a list of sequences; None where the request sets none."""
    if isinstance(stop, str) and stop:
        return [stop]
    if isinstance(stop, list) and stop:
        return [s for s in stop if isinstance(s, str) and s]
    return None


def check_one_choice(payload: dict[str, Any], provider: str) -> None:
    n = payload.get("n")
    if n is not None and n != 1:
        raise InvalidRequest(
            f"This model's provider ({provider}) answers one choice: 'n' must be 1.", param="n"
        )


def turns(messages: Any, dialect: BlockDialect) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, turns): the system and developer messages' text, and the conversation."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(array(messages, "messages")):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest("A message must be an object.", param=param)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(text_blocks(content, param, dialect))
            continue
        if role == "user":
            blocks = _user_blocks(content, param, dialect)
        elif role == "assistant":
            blocks = _assistant_blocks(message, param, dialect)
        elif role == "tool":
            blocks, role = [dialect.tool_result(_tool_call_id(message, param), content, param)], "user"
        else:
            raise InvalidRequest(
                f"Role {role!r} is not supported by this model's provider ({dialect.provider}).",
                param=f"{param}.role",
            )
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            # a user turn after tool results: the results must come first in the merged turn
            out[-1]["content"] = out[-1]["content"] + blocks
        else:
            out.append({"role": role, "content": blocks})
    if not out:
        raise InvalidRequest("At least one user or assistant message is required.", param="messages")
    return system, out


def text_blocks(content: Any, param: str, dialect: BlockDialect) -> list[dict[str, Any]]:
    """A message's content where only text may stand (system, assistant, tool messages)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [dialect.text(content, {})] if content else []
    blocks = []
    for j, part in enumerate(array(content, f"{param}.content")):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidRequest("Only text parts are allowed here.", param=f"{param}.content[{j}]")
        if part["text"]:
            blocks.append(dialect.text(part["text"], part))
    return blocks


def _user_blocks(content: Any, param: str, dialect: BlockDialect) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return text_blocks(content, param, dialect)
    blocks = []
    for j, part in enumerate(array(content, f"{param}.content")):
        kind = part.get("type") if isinstance(part, dict) else None
        where = f"{param}.content[{j}]"
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append(dialect.text(part["text"], part))
        elif kind == "image_url":
            blocks.append(dialect.image(part, where))
        elif kind == "doc":
            blocks.append(dialect.document(part, where))
        else:
            raise InvalidRequest(
                f"Content part type {kind!r} is not supported by this model's provider ({dialect.provider}).",
                param=where,
            )
    return blocks


def _assistant_blocks(message: dict[str, Any], param: str, dialect: BlockDialect) -> list[dict[str, Any]]:
    blocks = text_blocks(message.get("content"), param, dialect)
    calls = message.get("tool_calls")
    for j, call in enumerate(array(calls, f"{param}.tool_calls") if calls else []):
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
        blocks.append(dialect.tool_use(call.get("id"), function["name"], tool_input))
    return blocks


def _tool_call_id(message: dict[str, Any], param: str) -> str:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest("A tool message needs its tool_call_id.", param=f"{param}.tool_call_id")
    return call_id


class FunctionTool(NamedTuple):
    name: str
    description: str | None
    parameters: dict[str, Any]  # its JSON schema; an empty object's where the caller sent none


def function_tool(tool: Any, i: int, provider: str) -> FunctionTool:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest(
            f"Only function tools are supported by this model's provider ({provider}).", param=f"tools[{i}]"
        )
    description = function["description"] if isinstance(function.get("description"), str) else None
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return FunctionTool(function["name"], description, parameters)


# `response_format` for dialects without a JSON mode: the answer is asked for as a call of this tool
# (forced when the request offers no tools of its own), whose input the answer translation turns
# back into the message's content (openai_chat), as OpenAI's structured output returns it.
JSON_TOOL = "tollgate_json_output"


def json_output_tool(response_format: Any) -> dict[str, Any] | None:
    """The OpenAI function tool standing for a `json_schema` / `json_object` response format."""
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        spec = spec if isinstance(spec, dict) else {}
        schema = spec.get("schema") if isinstance(spec.get("schema"), dict) else {"type": "object"}
        name = spec.get("name") or "output"
        description = (
            spec.get("description") or f"Give the answer as the JSON object '{name}' this schema describes."
        )
    elif kind == "json_object":
        schema, description = {"type": "object"}, "Give the answer as a JSON object."
    else:
        return None
    function = {"name": JSON_TOOL, "description": description, "parameters": schema}
    return {"type": "function", "function": function}


class ToolChoice(NamedTuple):
    mode: str  # "auto", "required", "none", or "function" (the one named)
    name: str | None = None


def tool_choice(choice: Any) -> ToolChoice | None:
    """OpenAI's `tool_choice`, checked; None where the request sets none."""
    if choice is None:
        return None
    if choice in ("auto", "required", "none"):
        return ToolChoice(choice)
    if (
        isinstance(choice, dict)
        and choice.get("type") == "function"
        and isinstance(choice.get("function"), dict)
        and isinstance(choice["function"].get("name"), str)
    ):
        return ToolChoice("function", choice["function"]["name"])
    raise InvalidRequest(
        "'tool_choice' must be 'auto', 'required', 'none' or a function.", param="tool_choice"
    )
