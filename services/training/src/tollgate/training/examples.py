"""Training examples: JSONL lines in OpenAI's chat format or SloughGPT's prompt/completion pairs,
parsed and checked line by line, and rendered in the base model's chat format.

Pure functions: the API validates uploads with them (nothing is stored unless every line passes),
and the job process reads the same file with them, so what was accepted is what is trained.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CHAT = "chat"
PROMPT_COMPLETION = "prompt_completion"
_ROLES = frozenset({"system", "user", "assistant"})
MAX_TURNS = 256


class ExampleError(ValueError):
    """A bad example; `line` is 1-based (a JSONL line, or an item of an inline list)."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # user | assistant (system turns are kept only to be dropped at render time)
    content: str
    trainable: bool  # assistant turns with weight 1: the tokens the loss is computed on


@dataclass(frozen=True, slots=True)
class Example:
    turns: tuple[Turn, ...]


def parse_example(obj: Any, line: int) -> tuple[Example, str]:
    """One example and its format, or ExampleError naming the line and the problem."""
    if not isinstance(obj, dict):
        raise ExampleError(line, "each line must be a JSON object")
    if "messages" in obj:
        return _chat_example(obj["messages"], line), CHAT
    if "prompt" in obj or "completion" in obj:
        prompt, completion = obj.get("prompt"), obj.get("completion")
        if not isinstance(prompt, str) or not isinstance(completion, str):
            raise ExampleError(line, "'prompt' and 'completion' must both be strings")
        if not completion.strip():
            raise ExampleError(line, "'completion' must not be empty")
        turns = (Turn("user", prompt, False), Turn("assistant", completion, True))
        return Example(turns), PROMPT_COMPLETION
    raise ExampleError(line, "expected a 'messages' list or 'prompt' and 'completion' strings")


def _chat_example(messages: Any, line: int) -> Example:
    if not isinstance(messages, list) or not messages:
        raise ExampleError(line, "'messages' must be a non-empty list")
    if len(messages) > MAX_TURNS:
        raise ExampleError(line, f"at most {MAX_TURNS} messages per example")
    turns = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise ExampleError(line, f"{where} must be an object")
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES:
            raise ExampleError(line, f"{where}.role must be one of system, user, assistant")
        if not isinstance(content, str) or not content.strip():
            raise ExampleError(line, f"{where}.content must be a non-empty string")
        weight = message.get("weight", 1)
        if role == "assistant" and weight not in (0, 1):
            raise ExampleError(line, f"{where}.weight must be 0 or 1")
        turns.append(Turn(role, content, role == "assistant" and weight == 1))
    if not any(t.trainable for t in turns):
        raise ExampleError(line, "an example needs at least one assistant message to learn from")
    return Example(tuple(turns))


def parse_jsonl(data: bytes, *, max_lines: int) -> tuple[list[Example], str]:
    """Every example of a JSONL file (all one format), or ExampleError at the first bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ExampleError(line, "the file is not UTF-8 text") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    if not lines:
        raise ExampleError(1, "the file has no examples")
    if len(lines) > max_lines:
        raise ExampleError(max_lines + 1, f"the file has more than {max_lines} lines")
    return parse_objects(_decoded(lines))


def _decoded(lines: Sequence[str]) -> Iterable[tuple[int, Any]]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            raise ExampleError(number, "empty line")
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ExampleError(number, f"invalid JSON ({exc.msg} at column {exc.colno})") from None


def parse_objects(objects: Iterable[tuple[int, Any]]) -> tuple[list[Example], str]:
    """Examples from (line, object) pairs; every example must have the first one's format."""
    examples: list[Example] = []
    first_format = ""
    for line, obj in objects:
        example, fmt = parse_example(obj, line)
        if not first_format:
            first_format = fmt
        elif fmt != first_format:
            raise ExampleError(line, f"mixes formats: the file's first example is {first_format}")
        examples.append(example)
    if not examples:
        raise ExampleError(1, "no examples")
    return examples, first_format


# ---- chat formats ----------------------------------------------------------------------------
# Gemma's turn format, as llama-cpp-python's "gemma" chat format serves it (system turns dropped).
_GEMMA_ROLES = {"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"}
_GEMMA_END = "<end_of_turn>\n"


def render(example: Example, chat_format: str = "gemma") -> list[tuple[str, bool]]:
    """(text, trained) segments in order: the prompt parts are context, trainable answers learnt
    (with their end-of-turn marker, so the model learns to stop)."""
    if chat_format != "gemma":
        raise ValueError(f"unsupported chat format {chat_format!r}")
    segments: list[tuple[str, bool]] = []
    for turn in example.turns:
        if turn.role == "system":
            continue
        segments.append((_GEMMA_ROLES[turn.role], False))
        segments.append((turn.content + _GEMMA_END, turn.trainable))
    return segments


def estimate_tokens(example: Example, max_seq_len: int, chat_format: str = "gemma") -> int:
    """An upper bound of the tokens the example trains: every token holds at least one UTF-8 byte,
    plus one for the beginning-of-sequence token; capped where the trainer truncates."""
    rendered = sum(len(text.encode("utf-8")) for text, _ in render(example, chat_format))
    return min(rendered + 1, max_seq_len)
