"""The cost function for every pricing mode, its rounding, the batch multiplier, and billing's
refusal reasons mapped to errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollgate.common.errors import InvalidRequest
from tollgate.gateway.pricing.cost import (
    Operation,
    Prices,
    PricingPolicy,
    Usage,
    batch_requested,
    cost_micros,
    flat_request_cost,
    hold_micros,
)
from tollgate.gateway.pricing.refusals import CreditsRefused, QuotaExceeded, refusal

POLICY = PricingPolicy()
TOKENS = Prices(price_in_micros=2_000_000, price_out_micros=6_000_000)  # 2 / 6 credits per 1M tokens


def test_per_token_chat_and_completion_round_up_once_per_request() -> None:
    for op in (Operation.CHAT, Operation.COMPLETION):
        assert cost_micros(TOKENS, op, Usage(3, 4), POLICY) == 3 * 2 + 4 * 6
        assert cost_micros(Prices(1, 1), op, Usage(1, 1), POLICY) == 1  # 2e-6 micros -> 1, never free
        assert cost_micros(Prices(500_000, 0), op, Usage(3, 0), POLICY) == 2  # 1.5 micros -> 2
        assert cost_micros(TOKENS, op, Usage(0, 0), POLICY) == 0


def test_flat_per_request_price_adds_to_every_operation() -> None:
    prices = Prices(2_000_000, 6_000_000, price_request_micros=250_000, price_image_micros=40_000)
    assert cost_micros(prices, Operation.CHAT, Usage(3, 4), POLICY) == 250_000 + 30
    assert cost_micros(prices, Operation.CHAT, Usage(), POLICY) == 250_000
    assert cost_micros(prices, Operation.IMAGE, Usage(units=2), POLICY) == 250_000 + 80_000
    assert cost_micros(prices, Operation.EMBEDDING, Usage(10), POLICY) == 250_000 + 20


def test_images_are_priced_per_image_and_their_tokens_are_free() -> None:
    prices = Prices(2_000_000, 6_000_000, price_image_micros=40_000)
    assert cost_micros(prices, Operation.IMAGE, Usage(tokens_in=500, units=3), POLICY) == 120_000
    assert cost_micros(TOKENS, Operation.IMAGE, Usage(tokens_in=500, units=3), POLICY) == 0  # no image price


def test_embeddings_use_their_own_price_else_price_in_and_never_price_out() -> None:
    own = Prices(2_000_000, 6_000_000, price_embedding_micros=100_000)
    assert cost_micros(own, Operation.EMBEDDING, Usage(30, 99, 2), POLICY) == 3  # 30 * 0.1 micros
    assert cost_micros(own, Operation.EMBEDDING, Usage(31, 0, 2), POLICY) == 4  # 3.1 -> 4
    assert cost_micros(TOKENS, Operation.EMBEDDING, Usage(30, 99, 2), POLICY) == 60  # price_in
    free = Prices(2_000_000, 6_000_000, price_embedding_micros=0)
    assert cost_micros(free, Operation.EMBEDDING, Usage(30), POLICY) == 0  # explicitly free


def test_batch_multiplies_the_whole_cost_and_rounds_up() -> None:
    prices = Prices(2_000_000, 6_000_000, price_request_micros=1)
    assert cost_micros(prices, Operation.CHAT, Usage(3, 4), POLICY, batch=True) == 2 * 31
    one_and_a_half = PricingPolicy(batch_multiplier_permille=1500)
    assert cost_micros(prices, Operation.CHAT, Usage(3, 4), one_and_a_half, batch=True) == 47  # 46.5 -> 47
    assert cost_micros(prices, Operation.CHAT, Usage(3, 4), one_and_a_half) == 31


def test_credit_chat_flat_price_is_the_models_or_the_default_and_ignores_tokens() -> None:
    assert flat_request_cost(TOKENS, POLICY) == 1_000_000
    assert flat_request_cost(TOKENS, POLICY, batch=True) == 2_000_000
    own = Prices(2_000_000, 6_000_000, price_request_micros=300_000)
    assert flat_request_cost(own, POLICY) == 300_000
    assert flat_request_cost(own, POLICY, batch=True) == 600_000
    assert flat_request_cost(TOKENS, PricingPolicy(3000, 500_000), batch=True) == 1_500_000


def test_policy_from_settings() -> None:
    assert PricingPolicy.from_settings(2, 1_000_000) == PricingPolicy(2000, 1_000_000)
    assert PricingPolicy.from_settings(1.25, 0).batch_multiplier_permille == 1250
    with pytest.raises(ValueError):
        PricingPolicy.from_settings(0.5, 1)
    with pytest.raises(ValueError):
        PricingPolicy.from_settings(2, -1)


@given(
    st.sampled_from(list(Operation)),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.booleans(),
)
def test_the_hold_over_a_bound_covers_any_usage_within_it(
    op: Operation, bound_in: int, bound_out: int, units: int, used_in: int, used_out: int, batch: bool
) -> None:
    prices = Prices(2_000_000, 6_000_000, 1_000, 40_000, 300_000, 200_000, 2_500_000, 9_000_000)
    tokens_in, tokens_out = min(used_in, bound_in), min(used_out, bound_out)
    # any split of the used tokens into classes (here: a third cached, a third written, half reasoning)
    used = Usage(tokens_in, tokens_out, units, tokens_in // 3, tokens_in // 3, tokens_out // 2)
    hold = hold_micros(prices, op, Usage(bound_in, bound_out, units), POLICY, batch=batch)
    assert cost_micros(prices, op, used, POLICY, batch=batch) <= hold


def test_token_classes_have_their_own_prices_else_the_input_or_output_price() -> None:
    # 2 / 6 credits per 1M tokens in / out; cached reads 0.5, cache writes 2.5, reasoning 9
    own = Prices(2_000_000, 6_000_000, 0, 0, None, 500_000, 2_500_000, 9_000_000)
    used = Usage(1000, 300, 0, cached_in=600, cache_write=100, reasoning=200)
    # 300 plain in * 2 + 600 cached * 0.5 + 100 written * 2.5 + 100 plain out * 6 + 200 reasoning * 9
    assert cost_micros(own, Operation.CHAT, used, POLICY) == 600 + 300 + 250 + 600 + 1800
    # a model without class prices prices them as the tokens they are part of
    assert cost_micros(TOKENS, Operation.CHAT, used, POLICY) == cost_micros(
        TOKENS, Operation.CHAT, Usage(1000, 300), POLICY
    )
    # a zero class price is free, not "unset"
    free_cache = Prices(2_000_000, 6_000_000, price_cached_in_micros=0)
    assert cost_micros(free_cache, Operation.CHAT, Usage(1000, 0, cached_in=1000), POLICY) == 0


def test_a_hold_prices_its_bound_at_the_dearest_class() -> None:
    dear_write = Prices(
        2_000_000, 6_000_000, price_cache_write_micros=2_500_000, price_reasoning_micros=9_000_000
    )
    assert hold_micros(dear_write, Operation.CHAT, Usage(100, 10), POLICY) == 250 + 90
    assert hold_micros(TOKENS, Operation.CHAT, Usage(100, 10), POLICY) == 200 + 60


@pytest.mark.parametrize(
    ("query", "expected"),
    [(b"", False), (b"batch=1", True), (b"batch=true", True), (b"batch=0", False), (b"x=1&batch=1", True)],
)
def test_batch_query_flag(query: bytes, expected: bool) -> None:
    assert batch_requested(query) is expected


def test_batch_query_flag_refuses_other_values() -> None:
    with pytest.raises(InvalidRequest) as refused:
        batch_requested(b"batch=yes")
    assert refused.value.param == "batch"


def test_refusal_reasons_map_to_402_402_429() -> None:
    wallet = refusal("insufficient_credits", 2_000_000, 500_000)
    assert isinstance(wallet, CreditsRefused)
    assert (wallet.status_code, wallet.code, wallet.required_micros, wallet.available_micros) == (
        402,
        "insufficient_credits",
        2_000_000,
        500_000,
    )
    assert refusal("", 1, -5).code == "insufficient_credits"  # empty reason: the wallet refused
    assert refusal("", 1, -5).available_micros == 0  # type: ignore[attr-defined]
    budget = refusal("budget_exceeded", 1, 0)
    assert (budget.status_code, budget.code) == (402, "budget_exceeded")
    quota = refusal("quota_exceeded", 1, 0)
    assert isinstance(quota, QuotaExceeded)
    assert (quota.status_code, quota.code, quota.error_type) == (429, "quota_exceeded", "insufficient_quota")
