"""Shared by the Responses door's tests: a function tool, a JSON-schema text format, an
OpenAI-compatible stream chunk, and a parser for the door's server-sent events."""

from __future__ import annotations

from typing import Any

import orjson

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
PERSON_FORMAT = {
    "type": "json_schema",
    "name": "person",
    "schema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
    "strict": True,
}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + orjson.dumps({"id": "c", "choices": choices, **extra}) + b"\r\n\r\n"


def parse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        if frame:
            event, data = frame.split(b"\n")
            name = event.removeprefix(b"event: ").decode()
            payload = orjson.loads(data.removeprefix(b"data: "))
            assert payload["type"] == name  # the event line names the data's type
            out.append((name, payload))
    assert [e["sequence_number"] for _, e in out] == list(range(len(out)))
    return out
