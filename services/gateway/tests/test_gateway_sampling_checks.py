"""OpenAI's parameter ranges, checked before any hold (checks/sampling.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.checks.sampling import ParameterOutOfRange, check_sampling

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def refused(payload: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check_sampling(payload)
    return caught.value


def test_values_within_range_and_nulls_pass() -> None:
    check_sampling(
        {
            "temperature": 2,
            "top_p": 0.0,
            "presence_penalty": -2,
            "frequency_penalty": 1.5,
            "n": 1,
            "logprobs": True,
            "top_logprobs": 20,
            "stop": ["a", "b", "c", "d"],
            "logit_bias": {"50256": -100},
            "seed": 7,
            "tools": [TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        }
    )
    check_sampling({"temperature": None, "stop": "END", "tool_choice": "auto"})


def test_temperature_above_two_is_openais_error() -> None:
    error = refused({"temperature": 3})
    assert isinstance(error, ParameterOutOfRange)
    assert error.param == "temperature" and error.code == "decimal_above_max_value"
    assert error.message == (
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead."
    )
    assert error.details == {
        "parameter": "temperature",
        "value": 3,
        "allowed": "0 to 2",
        "allowed_range": [0, 2],
    }


@pytest.mark.parametrize(
    ("payload", "param", "code"),
    [
        ({"temperature": -0.1}, "temperature", "decimal_below_min_value"),
        ({"temperature": "hot"}, "temperature", "invalid_type"),
        ({"temperature": True}, "temperature", "invalid_type"),
        ({"top_p": 1.01}, "top_p", "decimal_above_max_value"),
        ({"presence_penalty": -2.5}, "presence_penalty", "decimal_below_min_value"),
        ({"frequency_penalty": 3}, "frequency_penalty", "decimal_above_max_value"),
        ({"n": 0}, "n", "integer_below_min_value"),
        ({"n": 1.5}, "n", "invalid_type"),
        ({"n": 129}, "n", "integer_above_max_value"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs", "integer_above_max_value"),
        ({"logprobs": "yes"}, "logprobs", "invalid_type"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "array_above_max_length"),
        ({"stop": 5}, "stop", "invalid_type"),
        ({"logit_bias": {"1": 101}}, "logit_bias.1", "decimal_above_max_value"),
        ({"logit_bias": [1]}, "logit_bias", "invalid_type"),
        ({"seed": "s"}, "seed", "invalid_type"),
    ],
)
def test_each_range_is_enforced_naming_the_parameter(payload: dict[str, Any], param: str, code: str) -> None:
    error = refused(payload)
    assert (error.param, error.code, error.status_code) == (param, code, 400)


def test_top_logprobs_needs_logprobs() -> None:
    assert refused({"top_logprobs": 2}).param == "top_logprobs"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [{"type": "function"}]}, "tools[0]"),
        (
            {"tools": [TOOL, {"type": "function", "function": {"name": "has space"}}]},
            "tools[1].function.name",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
            "tools[0].function.parameters",
        ),
        ({"tools": [TOOL] * 129}, "tools"),
        ({"tools": [TOOL], "tool_choice": "always"}, "tool_choice"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}},
            "tool_choice",
        ),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format.json_schema.name",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": "{}"}}},
            "response_format.json_schema.schema",
        ),
    ],
)
def test_tools_and_response_format_shapes(payload: dict[str, Any], param: str) -> None:
    error = refused(payload)
    assert error.param == param and error.status_code == 400
