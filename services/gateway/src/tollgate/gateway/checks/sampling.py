"""The sampling and tool parameters of a chat or text completion, checked as OpenAI checks them,
before any hold or upstream call: a request OpenAI would refuse is refused here (400 naming the
parameter), not passed to the provider and charged.

Ranges are OpenAI's published ones (temperature 0..2, top_p 0..1, penalties -2..2, n 1..128,
top_logprobs 0..20, logit_bias -100..100, up to 4 stop sequences, up to 128 tools whose names match
^[a-zA-Z0-9_-]{1,64}$). Each violation carries the parameter, the value and the allowed range, so
routes that document their own envelope (SloughGPT's INVALID_PARAMETER with `details`) render the
same facts. A dict walk over the keys present: requests that set none of these pay a few lookups.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tollgate.common.errors import InvalidRequest

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_TOOLS = 128
MAX_STOP = 4


class ParameterOutOfRange(InvalidRequest):
    """A parameter OpenAI would refuse; `details` is what SloughGPT's envelope shows."""

    def __init__(
        self,
        message: str,
        *,
        param: str,
        code: str,
        value: Any,
        allowed: str,
        allowed_range: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.details: dict[str, Any] = {"parameter": param, "value": value, "allowed": allowed}
        if allowed_range is not None:  # SloughGPT's error example: "allowed_range": [0.0, 2.0]
            self.details["allowed_range"] = list(allowed_range)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _ranged(name: str, low: float, high: float, *, integer: bool = False) -> Callable[[Any], None]:
    """A number (an integer when `integer`) within [low, high], with OpenAI's messages and codes."""
    noun = "integer" if integer else "decimal"
    allowed = f"{low:g} to {high:g}"

    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            article = "an" if integer else "a"
            raise ParameterOutOfRange(
                f"Invalid type for '{name}': expected {article} {noun}, but got {_kind(value)} instead.",
                param=name,
                code="invalid_type",
                value=value,
                allowed=allowed,
            )
        if low <= value <= high:
            return
        below = value < low
        side, sign, bound = ("below minimum", ">=", low) if below else ("above maximum", "<=", high)
        raise ParameterOutOfRange(
            f"Invalid '{name}': {noun} {side} value. Expected a value {sign} {bound:g}, "
            f"but got {value:g} instead.",
            param=name,
            code=f"{noun}_{'below_min' if below else 'above_max'}_value",
            value=value,
            allowed=allowed,
            allowed_range=(low, high),
        )

    return check


def _boolean(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, bool):
            raise ParameterOutOfRange(
                f"Invalid type for '{name}': expected a boolean, but got {_kind(value)} instead.",
                param=name,
                code="invalid_type",
                value=value,
                allowed="true or false",
            )

    return check


def _stop(value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParameterOutOfRange(
            "Invalid type for 'stop': expected a string or an array of strings, "
            f"but got {_kind(value)} instead.",
            param="stop",
            code="invalid_type",
            value=value,
            allowed=f"a string or up to {MAX_STOP} strings",
        )
    if len(value) > MAX_STOP:
        raise ParameterOutOfRange(
            f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, "
            f"but got an array with length {len(value)} instead.",
            param="stop",
            code="array_above_max_length",
            value=value,
            allowed=f"a string or up to {MAX_STOP} strings",
        )


def _logit_bias(value: Any) -> None:
    if not isinstance(value, dict):
        raise ParameterOutOfRange(
            f"Invalid type for 'logit_bias': expected an object, but got {_kind(value)} instead.",
            param="logit_bias",
            code="invalid_type",
            value=value,
            allowed="token ids to numbers from -100 to 100",
        )
    for token, bias in value.items():
        _ranged(f"logit_bias.{token}", -100, 100)(bias)


SAMPLING: dict[str, Callable[[Any], None]] = {
    "temperature": _ranged("temperature", 0, 2),
    "top_p": _ranged("top_p", 0, 1),
    "presence_penalty": _ranged("presence_penalty", -2, 2),
    "frequency_penalty": _ranged("frequency_penalty", -2, 2),
    "n": _ranged("n", 1, 128, integer=True),
    "top_logprobs": _ranged("top_logprobs", 0, 20, integer=True),
    "logprobs": _boolean("logprobs"),
    "parallel_tool_calls": _boolean("parallel_tool_calls"),
    "stop": _stop,
    "logit_bias": _logit_bias,
    "seed": _ranged("seed", -(2**63), 2**63 - 1, integer=True),
}


def check_sampling(payload: dict[str, Any]) -> None:
    """Raises ParameterOutOfRange for the first parameter out of OpenAI's range (null is unset)."""
    for name, check in SAMPLING.items():
        value = payload.get(name)
        if value is not None:
            check(value)
    if payload.get("top_logprobs") is not None and payload.get("logprobs") is not True:
        raise InvalidRequest("'top_logprobs' requires 'logprobs' to be true.", param="top_logprobs")
    if "tools" in payload or "tool_choice" in payload:
        check_tools(payload.get("tools"), payload.get("tool_choice"))
    if payload.get("response_format") is not None:
        check_response_format(payload["response_format"])


def check_response_format(value: Any) -> None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise InvalidRequest(
            "Invalid 'response_format.type': expected 'text', 'json_object' or 'json_schema'.",
            param="response_format.type",
        )
    if kind != "json_schema":
        return
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise InvalidRequest(
            "'response_format.json_schema' is required when the type is 'json_schema'.",
            param="response_format.json_schema",
        )
    name = spec.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise InvalidRequest(
            "Invalid 'response_format.json_schema.name': it must match ^[a-zA-Z0-9_-]{1,64}$.",
            param="response_format.json_schema.name",
        )
    schema = spec.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise InvalidRequest(
            "Invalid 'response_format.json_schema.schema': expected a JSON schema object.",
            param="response_format.json_schema.schema",
        )


def check_tools(tools: Any, tool_choice: Any) -> None:
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("'tools' must be an array of tool definitions.", param="tools")
        if len(tools) > MAX_TOOLS:
            raise InvalidRequest(f"'tools' holds at most {MAX_TOOLS} tools.", param="tools")
        for i, tool in enumerate(tools):
            names.append(_tool_name(tool, i))
    if tool_choice is None or tool_choice in ("none", "auto", "required"):
        return
    function = tool_choice.get("function") if isinstance(tool_choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if (
        not isinstance(tool_choice, dict)
        or tool_choice.get("type") != "function"
        or not isinstance(name, str)
    ):
        raise InvalidRequest(
            "'tool_choice' must be 'none', 'auto', 'required' or "
            '{"type": "function", "function": {"name": ...}}.',
            param="tool_choice",
        )
    if name not in names:
        raise InvalidRequest(
            f"Invalid 'tool_choice': the function '{name}' is not among the request's tools.",
            param="tool_choice",
        )


def _tool_name(tool: Any, i: int) -> str:
    where = f"tools[{i}]"
    if (
        not isinstance(tool, dict)
        or tool.get("type") != "function"
        or not isinstance(tool.get("function"), dict)
    ):
        raise InvalidRequest(f'\'{where}\' must be {{"type": "function", "function": {{...}}}}.', param=where)
    function = tool["function"]
    name = function.get("name")
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise InvalidRequest(
            f"Invalid '{where}.function.name': it must match ^[a-zA-Z0-9_-]{{1,64}}$.",
            param=f"{where}.function.name",
        )
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequest(
            f"Invalid '{where}.function.parameters': expected a JSON schema object.",
            param=f"{where}.function.parameters",
        )
    return name
