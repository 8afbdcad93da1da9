"""Hold stock on the real stack: a busy key's requests use holds billing placed ahead of them
(services/gateway/.../completions/hold_stock.py, docs/billing.md "Hold stock"), and money stays
exact: every request is charged once, every stocked hold is settled or given back, and a key near
its limits never gets one."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from reliability_support import grpc_balance

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, billing_db, ledger_usage, settled_events, wait_until
from tollgate.gateway.config import GatewaySettings

CHAT = {"model": "sim-chat", "messages": [{"role": "user", "content": "one two three"}], "max_tokens": 4}
# the stack runs the gateway with its defaults; a key fast enough is stocked past the depth, up to
# the max depth, which bounds what a busy key may still spend after a budget change
MAX_DEPTH = GatewaySettings().hold_stock_max_depth


def _send(client: httpx.Client, key: str) -> httpx.Response:
    return client.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"})


def _hold_ids(config: StackConfig, org_id: str) -> list[str]:
    with billing_db(config) as conn:
        rows = conn.execute("SELECT hold_id FROM usage_settlements WHERE org_id = %s", (org_id,)).fetchall()
    return [str(r[0]) for r in rows]


def _cost(resp: httpx.Response) -> int:
    usage = resp.json()["usage"]
    return int(usage["prompt_tokens"] * 2 + usage["completion_tokens"] * 10)


def _expect_exact_money(config: StackConfig, account: Account, funded: int, costs: list[int]) -> None:
    """The ledger holds exactly these charges; the wallet row and billing's cached balance agree with
    it to the micro-credit, and no hold is left (stock nobody used went back)."""
    assert ledger_usage(config, account.org_id) == (len(costs), sum(costs))
    with billing_db(config) as conn:
        row = conn.execute(
            "SELECT balance_micros FROM wallets WHERE org_id = %s", (account.org_id,)
        ).fetchone()
    assert row is not None and int(row[0]) == funded - sum(costs)
    _expect_nothing_held(config, account)
    assert grpc_balance(config, account.org_id).balance_micros == funded - sum(costs)


def _expect_nothing_held(config: StackConfig, account: Account) -> None:
    """Stock nobody used ages out and goes back to billing."""
    what = "the stocked holds to be given back"
    wait_until(lambda: grpc_balance(config, account.org_id).held_micros == 0, what=what)


def test_a_busy_key_uses_stocked_holds_and_is_charged_exactly_once_per_request(
    new_account: Callable[..., Account],
    config: StackConfig,
    gateway_url: str,
) -> None:
    account = new_account(credits=1)
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        costs = []
        for _ in range(40):
            resp = _send(client, account.key)
            assert resp.status_code == 200, resp.text
            usage = resp.json()["usage"]
            costs.append(usage["prompt_tokens"] * 2 + usage["completion_tokens"] * 10)

    wait_until(lambda: settled_events(config, account.org_id) == 40, what="40 requests to settle")
    holds = _hold_ids(config, account.org_id)
    stocked = [h for h in holds if h.startswith("hs_")]
    assert stocked, "back-to-back requests of a well-funded key should have used stocked holds"
    assert len(set(holds)) == 40  # one hold per request, stocked or its own
    assert ledger_usage(config, account.org_id) == (40, sum(costs))
    _expect_nothing_held(config, account)


def test_a_key_near_its_wallet_limit_never_gets_a_stocked_hold(
    new_account: Callable[..., Account], config: StackConfig, gateway_url: str
) -> None:
    # 0.003 credits: room for dozens of these requests, but not for 100 holds of their max cost
    account = new_account(credits=0.003)
    costs = []
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        for _ in range(20):
            resp = _send(client, account.key)
            assert resp.status_code == 200
            costs.append(_cost(resp))

    wait_until(lambda: settled_events(config, account.org_id) == 20, what="20 requests to settle")
    assert [h for h in _hold_ids(config, account.org_id) if h.startswith("hs_")] == []
    _expect_exact_money(config, account, 3_000, costs)


def test_a_budget_set_below_spend_stops_a_busy_key_after_at_most_its_stocked_holds(
    new_account: Callable[..., Account],
    admin: httpx.Client,
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    costs = []
    with httpx.Client(base_url=gateway_url, timeout=60) as client:
        for _ in range(10):
            resp = _send(client, account.key)
            assert resp.status_code == 200
            costs.append(_cost(resp))
        budget = admin.post("/cost/budget", json={"monthly_budget": 0.0001, "org_id": account.org_id})
        assert budget.status_code == 200, budget.text

        after = [_send(client, account.key) for _ in range(3 * MAX_DEPTH)]
        served = [r for r in after if r.status_code == 200]
        # billing refuses at once; only holds stocked before the change can still be spent
        assert len(served) <= MAX_DEPTH
        assert {r.status_code for r in after} <= {200, 402}
        refused = [r.json()["error"]["code"] for r in after if r.status_code == 402]
        assert refused and set(refused) == {"budget_exceeded"}
        assert after[-1].status_code == 402
    costs += [_cost(r) for r in served]
    # the requests served on stocked holds are charged like any other; the refused ones not at all
    wait_until(
        lambda: settled_events(config, account.org_id) == len(costs), what="the served requests to settle"
    )
    _expect_exact_money(config, account, 1_000_000, costs)
