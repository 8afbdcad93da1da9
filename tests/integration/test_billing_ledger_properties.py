"""A property test of billing's money model against the real stack: any sequence of recharges,
refunds (partial, whole, too large) and admin adjustments (each sometimes replayed with the same
Idempotency-Key) and usage events (some redelivered) leaves the ledger, the wallet, /v1/credits
and the cached balance (gRPC GetBalance) exactly where a tiny reference model says:

    balance = recharges - refunds + adjustments - usage, each counted once per natural key;
    a refund never exceeds what is left of its payment (else 400 and nothing changes);
    one ledger entry per distinct fact (usage only when it cost anything);
    entries ordered by wallet version add up to each entry's balance_after.

Recharges go through the admin API as they happen; usage events are published to usage.v1 in
runs, in sequence order, so recharges and usage interleave as they would in production. Each
example uses a fresh organisation, so examples are independent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_support import CachedBalance, grpc_balance, org_ledger, publish, settled_count, usage_event

from tollgate.contracts.v1 import events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, wait_until

MICROS_PER_CENT = 10_000

cents = st.integers(1, 500)
pick = st.integers(0, 50)  # an earlier fact, modulo how many there are
operations = st.lists(
    st.one_of(
        st.tuples(st.just("recharge"), cents),
        st.tuples(st.just("replay_recharge"), pick),
        st.tuples(st.just("refund"), pick, st.one_of(st.none(), cents)),  # None: all that is left
        st.tuples(st.just("replay_refund"), pick),
        st.tuples(st.just("adjust"), st.integers(-300, 300).filter(bool)),
        st.tuples(st.just("replay_adjust"), pick),
        st.tuples(st.just("usage"), st.integers(0, 2_000_000)),  # micros
        st.tuples(st.just("redeliver"), pick),
    ),
    min_size=1,
    max_size=14,
)


@dataclass
class Reference:
    """What the money model promises, computed without any of billing's code."""

    recharges: dict[str, int] = field(default_factory=dict)  # idempotency key -> micros
    refunds: dict[str, int] = field(default_factory=dict)  # refund id -> micros
    refunded: dict[int, int] = field(default_factory=dict)  # payment id -> micros refunded
    adjustments: dict[str, int] = field(default_factory=dict)  # idempotency key -> signed micros
    events: dict[str, int] = field(default_factory=dict)  # event id -> micros

    @property
    def balance(self) -> int:
        credits_in = sum(self.recharges.values()) + sum(self.adjustments.values())
        return credits_in - sum(self.refunds.values()) - sum(self.events.values())

    @property
    def usage_entries(self) -> int:
        return sum(1 for cost in self.events.values() if cost > 0)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
)
@given(ops=operations)
def test_balances_and_ledger_follow_the_reference_model(
    ops: list[tuple[Any, ...]],
    admin: httpx.Client,
    new_account: Callable[..., Account],
    config: StackConfig,
    gateway_url: str,
) -> None:
    account = new_account()
    grpc_balance(config, account.org_id)  # cached from the start, kept right by every change
    model = Reference()
    payments: list[tuple[str, int, int]] = []  # (idempotency key, micros, payment id), in order
    refunds: list[tuple[str, dict[str, Any]]] = []  # (refund id, body) of accepted refunds
    adjustments: list[tuple[str, int]] = []
    sent: list[events_pb2.UsageRecorded] = []
    pending: list[events_pb2.UsageRecorded] = []

    def flush() -> None:
        if pending:
            publish(config.kafka_bootstrap, pending)
            pending.clear()

    def post(path: str, body: dict[str, Any], key: str) -> httpx.Response:
        flush()  # usage published before this change goes first, as it would in production
        return admin.post(path, json=body, headers={"Idempotency-Key": key})

    def recharge(key: str, micros: int) -> int:
        resp = post("/admin/api-key/recharge", {"api_key": account.key, "balance": micros / 1_000_000}, key)
        assert resp.status_code == 200, resp.text
        model.recharges.setdefault(key, micros)
        return int(resp.json()["payment_id"])

    def refund(ref: str, body: dict[str, Any]) -> None:
        payment_id = body["payment_id"]
        paid = next(micros for _k, micros, pid in payments if pid == payment_id)
        left = paid - model.refunded.get(payment_id, 0)
        asked = left if body.get("amount") is None else round(body["amount"] * 1_000_000)
        resp = post("/admin/payment/refund", body, ref)
        if ref in model.refunds:  # a replay: the first answer again, nothing moves
            assert resp.status_code == 200 and resp.json()["replayed"], resp.text
        elif 0 < asked <= left:
            assert resp.status_code == 200, resp.text
            model.refunds[ref] = asked
            model.refunded[payment_id] = model.refunded.get(payment_id, 0) + asked
            refunds.append((ref, body))
        else:
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"]["code"] == "refund_exceeds_payment", resp.text

    def adjust(key: str, micros: int) -> None:
        body = {"api_key": account.key, "amount": micros / 1_000_000, "reason": "property test"}
        resp = post("/admin/payment/adjust", body, key)
        assert resp.status_code == 200, resp.text
        model.adjustments.setdefault(key, micros)

    for op, value, *rest in ops:
        if op == "recharge":
            key, micros = f"pay_{uuid.uuid4().hex}", value * MICROS_PER_CENT
            payments.append((key, micros, recharge(key, micros)))
        elif op == "replay_recharge" and payments:
            key, micros, payment_id = payments[value % len(payments)]
            assert recharge(key, micros) == payment_id
        elif op == "refund" and payments:
            amount = rest[0]
            body: dict[str, Any] = {"payment_id": payments[value % len(payments)][2]}
            if amount is not None:
                body["amount"] = amount * MICROS_PER_CENT / 1_000_000
            refund(f"ref_{uuid.uuid4().hex}", body)
        elif op == "replay_refund" and refunds:
            refund(*refunds[value % len(refunds)])
        elif op == "adjust":
            adjustments.append((f"adj_{uuid.uuid4().hex}", value * MICROS_PER_CENT))
            adjust(*adjustments[-1])
        elif op == "replay_adjust" and adjustments:
            adjust(*adjustments[value % len(adjustments)])
        elif op == "usage":
            event = usage_event(account.org_id, account.key_id, value)
            sent.append(event)
            pending.append(event)
            model.events[event.event_id] = value
        elif op == "redeliver" and sent:
            pending.append(sent[value % len(sent)])
    flush()

    wait_until(
        lambda: settled_count(config, [account.org_id]) == len(model.events),
        what=f"{len(model.events)} usage events to be settled",
    )
    ledger = org_ledger(config, account.org_id)
    assert ledger.usage_entries == model.usage_entries
    assert (
        ledger.entries
        == len(model.recharges) + len(model.refunds) + len(model.adjustments) + ledger.usage_entries
    )
    assert ledger.usage_micros == sum(model.events.values())
    assert ledger.chain_ok
    assert ledger.total_micros == model.balance
    assert ledger.wallet_micros == model.balance
    wait_until(
        lambda: grpc_balance(config, account.org_id) == CachedBalance(model.balance, 0),
        what="the cached balance to equal the reference model",
    )
    assert balance_micros(gateway_url, account.key) == model.balance
