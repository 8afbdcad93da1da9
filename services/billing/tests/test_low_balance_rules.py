"""Pure low-balance rules: which ledger entries cross a threshold, re-arming by a credit, what a
setting change counts as, and the alert's natural key."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from tollgate.billing.budgets.low_balance import (
    Crossing,
    amounts_by_org,
    crossed_by_setting,
    crossings,
    low_balance_fact,
)


def test_the_entry_that_goes_below_is_the_crossing() -> None:
    # balance 1,000 at version 10; threshold 500: 1,000 -> 700 -> 450 (crossed, v12) -> 100
    assert crossings(1_000, 10, [-300, -250, -350], 500) == [Crossing(12, 450)]


def test_landing_exactly_on_the_threshold_is_not_below_it() -> None:
    assert crossings(1_000, 0, [-500], 500) == []
    assert crossings(500, 1, [-1], 500) == [Crossing(2, 499)]


def test_a_balance_already_below_does_not_cross_again() -> None:
    assert crossings(400, 5, [-100, -100], 500) == []


def test_a_credit_re_arms_and_the_next_crossing_has_its_own_version() -> None:
    # 400 (below, v1), 300, a recharge lifts it to 1,100 (v3), 400 (below again, v4)
    history = [-600, -100, +800, -700]
    assert crossings(1_000, 0, history, 500) == [Crossing(1, 400), Crossing(4, 400)]
    # a credit that stays below the threshold does not re-arm
    assert crossings(1_000, 0, [-600, +50, -10], 500) == [Crossing(1, 400)]


@given(
    start=st.integers(-10_000, 10_000),
    amounts=st.lists(st.integers(-5_000, 5_000), max_size=40),
    threshold=st.integers(1, 10_000),
)
def test_crossings_match_a_step_by_step_reference(start: int, amounts: list[int], threshold: int) -> None:
    found = crossings(start, 100, amounts, threshold)
    balances = [start]
    for a in amounts:
        balances.append(balances[-1] + a)
    expected = [
        Crossing(100 + i, balances[i])
        for i in range(1, len(balances))
        if balances[i - 1] >= threshold > balances[i]
    ]
    assert found == expected
    # without a credit in between, a wallet can only go below once (usage alone never re-arms)
    for a, b in itertools.pairwise(found):
        assert any(amount > 0 for amount in amounts[a.version - 100 : b.version - 100])


def test_a_setting_change_alerts_only_when_it_makes_the_balance_low() -> None:
    assert crossed_by_setting(300, None, 500)  # new threshold above the balance
    assert crossed_by_setting(300, 200, 500)  # raised past a balance that was not low
    assert not crossed_by_setting(300, 400, 500)  # already low: re-saving or raising is silent
    assert not crossed_by_setting(300, 500, 500)
    assert not crossed_by_setting(600, None, 500)  # balance above the threshold
    assert not crossed_by_setting(500, None, 500)  # equal is not below
    assert not crossed_by_setting(300, 500, None)  # removing never alerts


def test_the_fact_names_the_crossing() -> None:
    fact = low_balance_fact("org_a", Crossing(42, 4_990_000), 5_000_000, ("ops@example.com",))
    assert fact.alert_id == "low_balance:org_a:wallet-v42:100"
    assert (fact.kind, fact.key_id, fact.budget_id, fact.period) == ("low_balance", None, "", "wallet-v42")
    assert (fact.limit_micros, fact.balance_micros, fact.spent_micros) == (5_000_000, 4_990_000, 0)
    assert fact.emails == ("ops@example.com",)


def test_amounts_are_the_usage_debits_per_org_in_posting_order() -> None:
    charges = [("a", 10), ("b", 0), ("a", 5), ("b", 7), ("c", 0)]
    assert amounts_by_org(charges) == {"a": [-10, -5], "b": [-7]}
