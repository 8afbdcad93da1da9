from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tollgate.gateway.completions.tokens import (
    heuristic_completion_tokens,
    heuristic_prompt_tokens,
    pessimistic_prompt_tokens,
    reported_usage,
)
from tollgate.gateway.pricing.cost import Usage
from tollgate.gateway.pricing.cost import token_cost as cost_micros


def test_cost_rounds_up_to_a_whole_micro_credit() -> None:
    assert cost_micros(0, 0, 5_000_000, 5_000_000) == 0
    assert cost_micros(1, 0, 1, 0) == 1  # 1e-6 of a micro rounds up, never down to free
    assert cost_micros(1_000_000, 1_000_000, 2_000_000, 6_000_000) == 8_000_000
    assert cost_micros(3, 4, 2_000_000, 6_000_000) == 30


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**9), st.integers(0, 10**9))
def test_cost_is_exact_integer_ceiling(tin: int, tout: int, pin: int, pout: int) -> None:
    cost = cost_micros(tin, tout, pin, pout)
    assert isinstance(cost, int)
    assert cost * 1_000_000 >= tin * pin + tout * pout > (cost - 1) * 1_000_000


def test_pessimistic_estimate_counts_utf8_bytes_over_two_plus_eight_per_message() -> None:
    messages = [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": [{"type": "text", "text": "héé"}, {"type": "image_url"}]},
    ]
    # 4 bytes + 5 bytes = 9 -> ceil(9/2) = 5, + 2 messages * 8
    assert pessimistic_prompt_tokens(messages) == 5 + 16
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert pessimistic_prompt_tokens(messages, tools) > pessimistic_prompt_tokens(messages)


def test_heuristic_estimates_four_chars_per_token() -> None:
    messages = [{"role": "user", "content": "hello there world"}]  # 17 chars
    assert heuristic_prompt_tokens(messages) == 5 + 4
    response = {
        "choices": [
            {
                "message": {
                    "content": "abcdefgh",
                    "tool_calls": [{"function": {"name": "ab", "arguments": "{}"}}],
                }
            }
        ]
    }
    assert heuristic_completion_tokens(response) == 3  # 8 + 2 + 2 chars


def test_reported_usage_needs_both_counts() -> None:
    assert reported_usage({"prompt_tokens": 1, "completion_tokens": 2}) == Usage(1, 2)
    assert reported_usage({"prompt_tokens": 1}) is None
    assert reported_usage(None) is None
    assert reported_usage({"prompt_tokens": -1, "completion_tokens": 2}) is None


def test_openai_usage_details_give_the_token_classes() -> None:
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 300,
        "prompt_tokens_details": {"cached_tokens": 600, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    assert reported_usage(usage) == Usage(1000, 300, cached_in=600, reasoning=200)
    # OpenAI-compatible proxies of Anthropic models: the cache counts at the top level
    proxied = {
        "prompt_tokens": 1000,
        "completion_tokens": 5,
        "cache_read_input_tokens": 700,
        "cache_creation_input_tokens": 250,
    }
    assert reported_usage(proxied) == Usage(1000, 5, cached_in=700, cache_write=250)
    written = {
        "prompt_tokens": 90,
        "completion_tokens": 1,
        "prompt_tokens_details": {"cache_write_tokens": 80},
    }
    assert reported_usage(written) == Usage(90, 1, cache_write=80)
    # a class can never exceed the tokens it is part of
    bad = {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 50}}
    assert reported_usage(bad) == Usage(10, 2, cached_in=10)


def test_anthropic_usage_adds_the_cache_to_the_input() -> None:
    usage = {
        "input_tokens": 20,
        "output_tokens": 7,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 300,
    }
    assert reported_usage(usage) == Usage(1320, 7, cached_in=1000, cache_write=300)
    assert reported_usage({"input_tokens": 3, "output_tokens": 4}) == Usage(3, 4)
