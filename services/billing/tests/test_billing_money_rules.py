"""Pure money rules: ledger rows derived from the wallet state, dedupe, event validation, amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from tollgate.billing.payments.schemas import RechargeRequest
from tollgate.billing.settlements.schemas import InvalidUsageEvent, UsageCharge
from tollgate.billing.settlements.service import dedupe
from tollgate.billing.wallets.repository import WalletState
from tollgate.billing.wallets.service import Posting, group_by_org, ledger_entries_for
from tollgate.contracts.v1 import events_pb2


def test_ledger_entries_walk_back_from_the_final_wallet_state() -> None:
    postings = [
        Posting("o", -300, "usage", "e1", 7),
        Posting("o", -200, "usage", "e2", 7),
        Posting("o", 1_000, "recharge", "p1", 8),
    ]
    # wallet started at balance 50, version 10; three entries later: 550, version 13
    entries = ledger_entries_for(WalletState("o", 550, 13), postings)
    assert [(e.ref, e.balance_after, e.wallet_version) for e in entries] == [
        ("e1", -250, 11),
        ("e2", -450, 12),
        ("p1", 550, 13),
    ]
    assert [e.amount_micros for e in entries] == [-300, -200, 1_000]
    assert entries[-1].key_id == 8


def test_group_by_org_keeps_event_order_within_an_org() -> None:
    postings = [Posting("a", -1, "usage", "1", None), Posting("b", -2, "usage", "2", None)]
    postings.append(Posting("a", -3, "usage", "3", None))
    grouped = group_by_org(postings)
    assert [p.ref for p in grouped["a"]] == ["1", "3"]
    assert [p.ref for p in grouped["b"]] == ["2"]


def _charge(event_id: str, cost: int = 10) -> UsageCharge:
    return UsageCharge(event_id, "o", None, None, None, cost, "ok")


def test_dedupe_keeps_first_occurrence_and_counts_repeats() -> None:
    unique, repeats = dedupe([_charge("a", 1), _charge("b"), _charge("a", 99), _charge("a")])
    assert [(c.event_id, c.cost_micros) for c in unique] == [("a", 1), ("b", 10)]
    assert repeats == 2


def test_usage_charge_from_event_maps_empty_fields_to_none() -> None:
    event = events_pb2.UsageRecorded(event_id="req_1", org_id="org_1", cost_micros=1234)
    charge = UsageCharge.from_event(event)
    assert charge == UsageCharge("req_1", "org_1", None, None, None, 1234, "ok")


@pytest.mark.parametrize(
    "event",
    [
        events_pb2.UsageRecorded(org_id="o", cost_micros=1),
        events_pb2.UsageRecorded(event_id="e", cost_micros=1),
        events_pb2.UsageRecorded(event_id="e", org_id="o", cost_micros=-1),
        events_pb2.UsageRecorded(event_id="e\x00", org_id="o", cost_micros=1),
    ],
)
def test_usage_events_that_cannot_be_settled_are_rejected(event: events_pb2.UsageRecorded) -> None:
    with pytest.raises(InvalidUsageEvent):
        UsageCharge.from_event(event)


def test_recharge_amounts_are_exact_micros() -> None:
    assert RechargeRequest(api_key="k", balance=0.23).amount_micros == 230_000  # type: ignore[arg-type]
    assert RechargeRequest(api_key="k", balance="1000000000").amount_micros == 10**15  # type: ignore[arg-type]
    assert RechargeRequest(api_key="k", balance=Decimal("0.000001")).amount_micros == 1


@pytest.mark.parametrize("balance", [0, -1, 1_000_000_001, "0.0000004", "nan", "abc"])
def test_recharge_amounts_out_of_range_are_refused(balance: object) -> None:
    with pytest.raises(ValidationError):
        RechargeRequest(api_key="k", balance=balance)  # type: ignore[arg-type]
