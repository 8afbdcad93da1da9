"""Package bonuses and refund proportions in integer micros (pure functions)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollgate.billing.payments.arithmetic import bonus_micros, refund_credits


@pytest.mark.parametrize(
    ("credits", "bps", "bonus"),
    [
        (5_000_000, 0, 0),
        (10_000_000, 0, 0),
        (25_000_000, 1000, 2_500_000),  # the credit chat API: $25 -> 25 + 2.5
        (50_000_000, 1500, 7_500_000),  # $50 -> 50 + 7.5
        (100_000_000, 2000, 20_000_000),  # $100 -> 100 + 20
        (1, 1500, 0),  # rounds down: never a fraction of a micro-credit
        (7, 10000, 7),
    ],
)
def test_bonus_is_exact_in_micros(credits: int, bps: int, bonus: int) -> None:
    assert bonus_micros(credits, bps) == bonus


@pytest.mark.parametrize(("credits", "bps"), [(-1, 0), (1, -1), (1, 10001)])
def test_bonus_refuses_out_of_range_inputs(credits: int, bps: int) -> None:
    with pytest.raises(ValueError):
        bonus_micros(credits, bps)


def test_refunding_half_of_a_bonus_package_takes_back_half_of_the_credits() -> None:
    # $25 paid, 27.5 credits granted: refunding $10 then $15 takes back 11 then 16.5 credits
    first = refund_credits(
        granted_micros=27_500_000, paid_micros=25_000_000, refunded_before=0, amount_micros=10_000_000
    )
    rest = refund_credits(
        granted_micros=27_500_000,
        paid_micros=25_000_000,
        refunded_before=10_000_000,
        amount_micros=15_000_000,
    )
    assert (first, rest) == (11_000_000, 16_500_000)


@pytest.mark.parametrize(
    ("before", "amount"), [(0, 0), (0, -1), (0, 25_000_001), (20_000_000, 5_000_001), (-1, 1)]
)
def test_refund_outside_the_payment_is_refused(before: int, amount: int) -> None:
    with pytest.raises(ValueError):
        refund_credits(
            granted_micros=27_500_000, paid_micros=25_000_000, refunded_before=before, amount_micros=amount
        )


@given(
    paid=st.integers(1, 10**12),
    bonus_pct=st.integers(0, 10000),
    cuts=st.lists(st.floats(0, 1, allow_nan=False), max_size=8),
)
def test_partial_refunds_always_add_up_to_exactly_what_was_granted(
    paid: int, bonus_pct: int, cuts: list[float]
) -> None:
    granted = paid + bonus_micros(paid, bonus_pct)
    points = sorted({0, paid, *(int(paid * c) for c in cuts)})
    taken = []
    for before, after in itertools.pairwise(points):
        taken.append(
            refund_credits(
                granted_micros=granted, paid_micros=paid, refunded_before=before, amount_micros=after - before
            )
        )
    assert all(t >= 0 for t in taken)
    assert sum(taken) == granted
