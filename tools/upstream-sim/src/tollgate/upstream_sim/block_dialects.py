"""What the simulator's content-block dialects share (Anthropic's Messages API: anthropic.py;
Bedrock's Converse API: converse.py): a prompt counted as the words of its text blocks plus a fixed
price per image and document, the same cues in the model name (errors, cache reads and writes,
drip), the same checks of the turns, and an answer that uses a tool when the request forces one or
the last user turn names one, its input filled with sample values of the schema's required
properties.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
from starlette.requests import Request

from tollgate.upstream_sim.app import DRIP_CHUNK_DELAY_S, SimStats, chunk_delay_of, completion_token_count

IMAGE_TOKENS = 8
DOCUMENT_TOKENS = 32  # per document block, whatever its size
SAMPLE_VALUES = {"string": "sim", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}}


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def words(text: Any) -> int:
    return len(text.split()) if isinstance(text, str) else 0


def tool_use_tokens(tool_input: Any) -> int:
    return len(orjson.dumps(tool_input or {})) // 4


def conversation_tokens(
    system: int | None, messages: list[Any], content_tokens: Callable[[Any], int | None]
) -> int | None:
    """The system prompt's tokens plus every turn's content's; None when a block is malformed."""
    if system is None:
        return None
    total = system
    for message in messages:
        tokens = content_tokens(as_object(message).get("content"))
        if tokens is None:
            return None
        total += tokens
    return total


def cache_split(model: str, prompt: int) -> tuple[int, int]:
    """(read, written) of the prompt: "cachedetail" reads half of it from the cache, "cachewrite"
    reads a quarter and writes half; the dialect's input count is what is left."""
    read = written = 0
    if "cachedetail" in model:
        read = prompt // 2
    if "cachewrite" in model:
        read, written = prompt // 4, prompt // 2
    return read, written


def cued_error(model: str, cues: tuple[tuple[str, int, str], ...]) -> tuple[int, str] | None:
    """(status, the dialect's error type) of the first cue the model name holds."""
    for cue, status, error_type in cues:
        if cue in model:
            return status, error_type
    return None


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def messages_problem(messages: Any) -> str | None:
    """What is wrong with the turns, as both APIs say it; None when nothing is."""
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return "messages: roles must be 'user' or 'assistant'"
    return None


def tool_to_call(
    tools: list[dict[str, Any]], forced: str | None, forced_name: Any, user_text: str | None
) -> dict[str, Any] | None:
    """The tool the answer uses: forced ("tool": the one named; "any": the first), else the first
    that the last user turn's text names (None: there is no user turn)."""
    if not tools:
        return None
    if forced == "tool":
        return next((t for t in tools if t["name"] == forced_name), None)
    if forced == "any":
        return tools[0]
    if user_text is None:
        return None
    return next((t for t in tools if t["name"] in user_text), None)


def sample_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool input with a sample value for each of the schema's required properties."""
    properties = as_object(schema.get("properties"))
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    return {
        name: SAMPLE_VALUES.get(as_object(properties.get(name)).get("type", "string"), "sim")
        for name in required
    }


def argument_halves(tool_input: dict[str, Any]) -> tuple[str, str]:
    """A streamed tool input's JSON, in two pieces (as real upstreams send it: piecemeal)."""
    arguments = orjson.dumps(tool_input).decode()
    half = len(arguments) // 2
    return arguments[:half], arguments[half:]


class SimAnswer(NamedTuple):
    """What the simulator answers: n text tokens, or a use of `tool` (its input: sample values)."""

    model: str
    n: int
    tool: dict[str, Any] | None
    stop_reason: str  # both APIs' names: end_turn, max_tokens, tool_use
    usage: dict[str, Any]  # in the dialect's shape


def sim_answer(
    model: str,
    max_tokens: int,
    tool: dict[str, Any] | None,
    prompt: int,
    usage_of: Callable[[str, int, int], dict[str, Any]],
) -> SimAnswer:
    n = completion_token_count(model, max_tokens)
    reason = "tool_use" if tool is not None else "max_tokens" if n >= max_tokens else "end_turn"
    return SimAnswer(model, n, tool, reason, usage_of(model, prompt, n))


def stream_delay(request: Request, model: str) -> float:
    return chunk_delay_of(request) or (DRIP_CHUNK_DELAY_S if "drip" in model else 0.0)


def count_abort(stats: SimStats, model: str, headers: Any, sent: int, n: int) -> None:
    """A stream whose caller went away: how many of its n content events it had sent (a gateway
    whose client disconnected must stop the generation; tests read this)."""
    stats.streams_aborted.append(
        {"model": model, "tag": headers.get("x-sim-tag", ""), "chunks_sent": sent, "of": n}
    )
