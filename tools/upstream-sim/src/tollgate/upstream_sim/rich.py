"""Rich answers in OpenAI's dialect, so tests can drive tools, structured output and content parts
through the gateway and see what reached the provider:

- tools: when the request has `tools` and `tool_choice` is "required" or names a function, or the
  last user turn names one of the tools, the answer calls it (`tool_calls`, finish_reason
  "tool_calls"), with arguments built from the function's JSON schema (required properties only);
  streamed as OpenAI streams them: the call's id, type and name in the first delta, the arguments in
  pieces after it. `tool_choice: "none"` never calls a tool.
- `response_format`: `json_schema` answers a JSON object built from the schema, `json_object` a
  small JSON object; the content is a JSON string, as OpenAI's is.
- models named "...echo...": the answer's content lists the content parts the request carried
  (`parts: text=1 image_url=2 (data=1, http=1) file=0 input_audio=0`), so a test can prove that an
  image or a document arrived in the shape this dialect takes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

SAMPLE_VALUES: dict[str, Any] = {
    "string": "sim",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "array": [],
    "object": {},
    "null": None,
}
ARGUMENT_PIECE = 8  # characters of a tool call's arguments per streamed delta


@dataclass(slots=True)
class RichAnswer:
    """The assistant message's content or tool calls, and the finish reason that goes with them."""

    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls is not None:
            message["tool_calls"] = self.tool_calls
        return message


def wants_rich(body: dict[str, Any], model: str) -> bool:
    return "tools" in body or "response_format" in body or "echo" in model


def answer(body: dict[str, Any], model: str) -> RichAnswer | None:
    """The rich answer this request gets, or None for the plain "tok0 tok1 ..." one."""
    tool = tool_to_call(body)
    if tool is not None:
        call = {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {
                "name": tool["name"],
                "arguments": orjson.dumps(example_of(tool.get("parameters"))).decode(),
            },
        }
        return RichAnswer(None, [call], "tool_calls")
    structured = structured_content(body.get("response_format"))
    if structured is not None:
        return RichAnswer(structured, None, "stop")
    if "echo" in model:
        return RichAnswer(parts_summary(body.get("messages")), None, "stop")
    return None


def tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    functions = [
        t["function"]
        for t in body.get("tools") or []
        if isinstance(t, dict)
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
    ]
    choice = body.get("tool_choice")
    if not functions or choice == "none":
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return next((f for f in functions if f["name"] == name), None)
    if choice == "required":
        return functions[0]
    text = last_user_text(body.get("messages"))
    return next((f for f in functions if f["name"] in text), None)


def structured_content(response_format: Any) -> str | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return orjson.dumps(example_of(schema)).decode()
    if kind == "json_object":
        return orjson.dumps({"answer": "sim"}).decode()
    return None


def example_of(schema: Any) -> Any:
    """A value that satisfies the schema's types and required properties (nested objects too)."""
    if not isinstance(schema, dict):
        return {}
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
        return schema["enum"][0]
    if kind == "object":
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        return {name: example_of(properties.get(name, {"type": "string"})) for name in required}
    if kind == "array":
        return [example_of(schema["items"])] if isinstance(schema.get("items"), dict) else []
    return SAMPLE_VALUES.get(kind, "sim")


def last_user_text(messages: Any) -> str:
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
                )
            return ""
    return ""


def parts_summary(messages: Any) -> str:
    counts = {"text": 0, "image_url": 0, "file": 0, "input_audio": 0}
    sources = {"data": 0, "http": 0}
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            counts["text"] += 1
            continue
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in counts:
                counts[kind] += 1
            if kind == "image_url":
                image = part.get("image_url")
                url = image.get("url", "") if isinstance(image, dict) else ""
                sources["data" if str(url).startswith("data:") else "http"] += 1
    return (
        f"parts: text={counts['text']} image_url={counts['image_url']} "
        f"(data={sources['data']}, http={sources['http']}) file={counts['file']} "
        f"input_audio={counts['input_audio']}"
    )


def stream_deltas(rich: RichAnswer) -> Iterator[tuple[dict[str, Any], str | None]]:
    """(delta, finish_reason) pairs of the streamed answer, OpenAI's way: the first delta carries
    the role (and a tool call's id, type and name), later ones the arguments or content in pieces."""
    if rich.tool_calls is not None:
        for index, call in enumerate(rich.tool_calls):
            head = {"index": index, "id": call["id"], "type": "function"}
            head["function"] = {"name": call["function"]["name"], "arguments": ""}
            first: dict[str, Any] = {"tool_calls": [head]}
            if index == 0:
                first = {"role": "assistant", "content": None, **first}
            yield first, None
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), ARGUMENT_PIECE):
                piece = arguments[start : start + ARGUMENT_PIECE]
                yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}, None
    else:
        text = rich.content or ""
        yield {"role": "assistant", "content": ""}, None
        for start in range(0, len(text), ARGUMENT_PIECE):
            yield {"content": text[start : start + ARGUMENT_PIECE]}, None
    yield {}, rich.finish_reason
