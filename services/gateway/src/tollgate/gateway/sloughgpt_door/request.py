"""SloughGPT's generation bodies, checked before any hold or upstream call.

Every parameter out of range is the seed's `INVALID_PARAMETER` 400 with `details` naming the
parameter, the value and the allowed range, exactly as its error example shows
("Parameter 'temperature' must be between 0 and 2", `allowed_range: [0.0, 2.0]`). A generation is
a chat completion of one user message (what every provider behind the gateway serves); a batch is
one such call per prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.checks.sampling import ParameterOutOfRange

MAX_TOKENS = 131_072
MAX_STOP_SEQUENCES = 4  # OpenAI's bound, which every provider behind us accepts
MAX_BATCH_PROMPTS = 100
# name -> (low, high, integer)
RANGES: dict[str, tuple[float, float, bool]] = {
    "max_tokens": (1, MAX_TOKENS, True),
    "temperature": (0.0, 2.0, False),
    "top_p": (0.0, 1.0, False),
}


@dataclass(frozen=True, slots=True)
class Generation:
    model_id: str
    prompts: list[str]  # one for /generate
    max_tokens: int | None
    sampling: dict[str, Any]  # temperature, top_p, stop: as the chat payload names them
    stream: bool

    def payload(self, prompt: str) -> dict[str, Any]:
        """The chat completion the upstream is asked for."""
        payload: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], **self.sampling}
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        return payload


def _out_of_range(name: str, value: Any, low: float, high: float, integer: bool) -> ParameterOutOfRange:
    kind = "an integer " if integer else ""  # the seed's own words for a number
    return ParameterOutOfRange(
        f"Parameter '{name}' must be {kind}between {low:g} and {high:g}",
        param=name,
        code="invalid_parameter",
        value=value,
        allowed=f"{low:g} to {high:g}",
        allowed_range=(low, high),
    )


def _ranged(body: dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    low, high, integer = RANGES[name]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or (integer and not isinstance(value, int)) or not low <= value <= high:
        raise _out_of_range(name, value, low, high, integer)
    return value


def _stop_sequences(body: dict[str, Any]) -> list[str] | None:
    value = body.get("stop_sequences")
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) > MAX_STOP_SEQUENCES
        or not all(isinstance(s, str) and s for s in value)
    ):
        raise ParameterOutOfRange(
            f"Parameter 'stop_sequences' must be a list of at most {MAX_STOP_SEQUENCES} non-empty strings",
            param="stop_sequences",
            code="invalid_parameter",
            value=value,
            allowed=f"0 to {MAX_STOP_SEQUENCES} strings",
            allowed_range=(0, MAX_STOP_SEQUENCES),
        )
    return value


def _model_id(body: dict[str, Any], default_model: str) -> str:
    value = body.get("model_id", default_model or None)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(
            "Parameter 'model_id' is required and must be a non-empty string", param="model_id"
        )
    return value


def _prompt(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"Parameter '{name}' must be a non-empty string", param=name)
    return value


def _common(body: dict[str, Any], default_model: str, prompts: list[str], stream: bool) -> Generation:
    sampling: dict[str, Any] = {}
    for name in ("temperature", "top_p"):
        value = _ranged(body, name)
        if value is not None:
            sampling[name] = value
    stop = _stop_sequences(body)
    if stop:
        sampling["stop"] = stop
    return Generation(_model_id(body, default_model), prompts, _ranged(body, "max_tokens"), sampling, stream)


def parse_generate(body: dict[str, Any], default_model: str) -> Generation:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("Parameter 'stream' must be a boolean", param="stream")
    return _common(body, default_model, [_prompt(body.get("prompt"), "prompt")], stream)


def parse_batch(body: dict[str, Any], default_model: str) -> Generation:
    prompts = body.get("prompts")
    if not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_BATCH_PROMPTS:
        raise ParameterOutOfRange(
            f"Parameter 'prompts' must be a list of 1 to {MAX_BATCH_PROMPTS} prompts",
            param="prompts",
            code="invalid_parameter",
            value=len(prompts) if isinstance(prompts, list) else prompts,
            allowed=f"1 to {MAX_BATCH_PROMPTS} prompts",
            allowed_range=(1, MAX_BATCH_PROMPTS),
        )
    if body.get("stream"):
        raise InvalidRequest("A batch is answered in one piece: 'stream' must be false", param="stream")
    checked = [_prompt(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
    return _common(body, default_model, checked, False)
