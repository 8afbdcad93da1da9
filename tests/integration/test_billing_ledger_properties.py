"""A property test of billing's money model and alerts against the real stack: any sequence of
recharges, refunds (partial, whole, too large) and admin adjustments (each sometimes replayed with
the same Idempotency-Key), usage events (some redelivered), org and key monthly budgets set,
changed and removed, and a low-balance threshold set, changed and cleared, leaves the ledger, the
wallet, /v1/credits, the cached balance (gRPC GetBalance) and the alerts billing recorded (GET
/cost/alerts) exactly where a tiny reference model says:

    balance = recharges - refunds + adjustments - usage, each counted once per natural key;
    a refund never exceeds what is left of its payment (else 400 and nothing changes);
    one ledger entry per distinct fact (usage only when it cost anything);
    entries ordered by wallet version add up to each entry's balance_after;
    a budget alert exists once for every threshold (50, 80, 100 % and its alert_threshold) that
      the month's settled spend reached while that budget was in force (at a settlement or when
      the budget was set), named "budget_threshold:<budget id>:<month>:<pct>"; a replaced budget
      keeps its id, a removed and re-created one gets a new id;
    a low-balance alert exists once for every moment the balance turned low (below the threshold,
      having not been), by a debit or by setting the threshold, named by the wallet version then:
      "low_balance:<org>:wallet-v<N>:100"; nothing else alerts.

Recharges go through the admin API as they happen; usage events are published to usage.v1 in
runs, in sequence order, so recharges and usage interleave as they would in production. Alerts
depend on the order of ledger entries and setting changes, so before a budget or low-balance
change, and before any admin post while a low-balance threshold is set, the test waits until
billing settled the usage published so far. Each example uses a fresh organisation, so examples
are independent. A failure prints the falsifying sequence and a @reproduce_failure blob.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from billing_reference_model import MICROS_PER_CENT, Budget, Reference, month_of, operations
from hypothesis import HealthCheck, Phase, event, given, settings, target
from reliability_support import (
    CachedBalance,
    grpc_balance,
    org_alerts,
    org_ledger,
    publish,
    settled_count,
)

from tollgate.contracts.v1 import events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, balance_micros, wait_until
from tollgate.devstack.usage_events import usage_event


class Stack:
    """The fixtures an example uses, printed as one word: a falsifying example shows its operations,
    not the stack's settings (hypothesis would print the whole environment and the admin key)."""

    def __init__(
        self, admin: httpx.Client, new_account: Callable[..., Account], config: StackConfig, gateway_url: str
    ) -> None:
        self.admin, self.new_account, self.config, self.gateway_url = admin, new_account, config, gateway_url

    def __repr__(self) -> str:
        return "Stack(test profile)"


@pytest.fixture(scope="module")
def stack_fixtures(
    admin: httpx.Client, new_account: Callable[..., Account], config: StackConfig, gateway_url: str
) -> Stack:
    return Stack(admin, new_account, config, gateway_url)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
    print_blob=True,
    # no "explain" phase: on this stack it takes minutes and adds nothing the shrunk example lacks
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
@given(ops=operations)
def test_balances_ledger_and_alerts_follow_the_reference_model(
    ops: list[tuple[Any, ...]], stack_fixtures: Stack
) -> None:
    admin, config, gateway_url = stack_fixtures.admin, stack_fixtures.config, stack_fixtures.gateway_url
    account = stack_fixtures.new_account()
    org = account.org_id
    grpc_balance(config, org)  # cached from the start, kept right by every change
    model = Reference(org)
    payments: list[tuple[str, int, int]] = []  # (idempotency key, micros, payment id), in order
    refunds: list[tuple[str, dict[str, Any]]] = []  # (refund id, body) of accepted refunds
    adjustments: list[tuple[str, int]] = []
    budget_ids: set[str] = set()
    sent: list[events_pb2.UsageRecorded] = []
    pending: list[events_pb2.UsageRecorded] = []

    def flush() -> None:
        if pending:
            publish(config.kafka_bootstrap, pending)
            pending.clear()

    def settle() -> None:
        """Publishes pending usage and waits until billing settled all of it, so the next change
        lands after it in the wallet's sequence, as it does in the model."""
        flush()
        wait_until(lambda: settled_count(config, [org]) == len(model.events), what="usage to settle")

    def post(path: str, body: dict[str, Any], key: str) -> httpx.Response:
        # usage published before this change goes first, as it would in production; while a
        # low-balance threshold is set the order of entries decides which one alerts: settle first
        if model.low_threshold is not None:
            settle()
        else:
            flush()
        return admin.post(path, json=body, headers={"Idempotency-Key": key})

    def recharge(key: str, micros: int) -> int:
        resp = post("/admin/api-key/recharge", {"api_key": account.key, "balance": micros / 1_000_000}, key)
        assert resp.status_code == 200, resp.text
        if key not in model.recharges:
            model.recharges[key] = micros
            model.posted("recharge")
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
            model.posted("refund")
            refunds.append((ref, body))
        else:
            assert resp.status_code == 400, resp.text
            assert resp.json()["error"]["code"] == "refund_exceeds_payment", resp.text

    def adjust(key: str, micros: int) -> None:
        body = {"api_key": account.key, "amount": micros / 1_000_000, "reason": "property test"}
        resp = post("/admin/payment/adjust", body, key)
        assert resp.status_code == 200, resp.text
        if key not in model.adjustments:
            model.adjustments[key] = micros
            model.posted("adjustment")

    def set_budget(where: str, limit: int, pct: int | None, hard_limit: bool) -> None:
        settle()
        body: dict[str, Any] = {"org_id": org, "monthly_budget": limit / 1_000_000, "hard_limit": hard_limit}
        if where == "key":
            body["key_id"] = account.key_id
        if pct is not None:
            body["alert_threshold"] = pct / 100
        resp = admin.post("/cost/budget", json=body)
        assert resp.status_code == 200, resp.text
        out = resp.json()
        month = out["current_period"]
        assert (out["limit_micros"], out["spent_micros"]) == (limit, model.spent.get(month, 0)), out
        previous = model.budgets.get(where)
        assert out["id"] == previous.id if previous else out["id"] not in budget_ids, out
        budget_ids.add(out["id"])
        model.budgets[where] = Budget(out["id"], limit, pct)
        model.watch_budgets(month, "setting")

    def remove_budget(where: str, with_delete: bool) -> None:
        settle()
        key = {"key_id": account.key_id} if where == "key" else {}
        if with_delete:
            resp = admin.delete("/cost/budget", params={"org_id": org, **key})
        else:
            resp = admin.post("/cost/budget", json={"org_id": org, "monthly_budget": None, **key})
        assert resp.status_code == 200, resp.text
        assert resp.json()["deleted"] == (where in model.budgets), resp.text
        model.budgets.pop(where, None)

    def set_low_balance(threshold: int | None) -> None:
        settle()
        amount = None if threshold is None else threshold / 1_000_000
        resp = admin.post("/cost/low-balance", json={"org_id": org, "low_balance_threshold": amount})
        assert resp.status_code == 200, resp.text
        existed = model.low_threshold is not None
        model.low_threshold = threshold
        model.watch_balance("setting")
        out = resp.json()
        if threshold is None:
            assert out["deleted"] == existed, out
        else:
            expected = (threshold, model.balance, model.low)
            assert (
                out["low_balance_threshold_micros"],
                out["balance_micros"],
                out["below_threshold"],
            ) == expected

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
            usage = usage_event(org, account.key_id, value)
            sent.append(usage)
            pending.append(usage)
            model.events[usage.event_id] = value
            if value > 0:
                month = month_of(usage.finished_at_unix_ms)
                model.spent[month] = model.spent.get(month, 0) + value
                model.posted("usage")
                model.watch_budgets(month, "usage")
        elif op == "redeliver" and sent:
            pending.append(sent[value % len(sent)])
        elif op == "budget":
            set_budget(value, rest[0] * MICROS_PER_CENT, rest[1], rest[2])
        elif op == "unbudget":
            remove_budget(value, rest[0])
        elif op == "low_balance":
            set_low_balance(
                None if value is None else max(MICROS_PER_CENT, model.balance + value * MICROS_PER_CENT)
            )
    settle()

    ledger = org_ledger(config, org)
    assert ledger.usage_entries == model.usage_entries
    assert (
        ledger.entries
        == len(model.recharges) + len(model.refunds) + len(model.adjustments) + ledger.usage_entries
    )
    assert ledger.entries == model.version
    assert ledger.usage_micros == sum(model.events.values())
    assert ledger.chain_ok
    assert ledger.total_micros == model.balance
    assert ledger.wallet_micros == model.balance
    # alerts are recorded in the transaction that settles (or sets) what fired them: all here now
    alerts = org_alerts(admin, org)
    assert len(alerts) == len({a["alert_id"] for a in alerts}), "an alert recorded twice"
    recorded = {
        a["alert_id"]: (a["limit_micros"], a["balance_micros"] if a["kind"] == "low_balance" else None)
        for a in alerts
    }
    assert recorded == model.alerts
    for cause in sorted(model.causes) or ["no alert"]:  # --hypothesis-show-statistics: coverage
        event(cause)
    target(len(model.causes), label="kinds of alert fired")  # steer towards sequences that alert
    wait_until(
        lambda: grpc_balance(config, org) == CachedBalance(model.balance, 0),
        what="the cached balance to equal the reference model",
    )
    assert balance_micros(gateway_url, account.key) == model.balance
