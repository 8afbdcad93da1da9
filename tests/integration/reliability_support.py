"""Helpers of the billing reliability tests: usage events on the real contract, Kafka publishing,
billing's gRPC GetBalance (the Redis-cached balance), read-only looks at the ledger and the alerts
billing recorded for an organisation."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import httpx

from tollgate.contracts.v1 import billing_pb2, billing_pb2_grpc, events_pb2
from tollgate.devstack import usage_events
from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import billing_db


def publish(bootstrap: str, events: Sequence[events_pb2.UsageRecorded]) -> None:
    """Publishes to usage.v1 keyed by org (as the gateway does), in order, and waits for every ack."""
    usage_events.publish(bootstrap, events, "reliability-test", linger_ms=5)


@dataclass(frozen=True)
class CachedBalance:
    balance_micros: int
    held_micros: int


def grpc_balance(config: StackConfig, org_id: str) -> CachedBalance:
    """Billing's GetBalance: the balance the hot path sees (Redis, loaded from PostgreSQL if cold)."""
    with grpc.insecure_channel(config.grpc_target("billing")) as channel:
        reply = billing_pb2_grpc.BillingServiceStub(channel).GetBalance(
            # others restart billing on the shared stack: wait for it rather than fail
            billing_pb2.GetBalanceRequest(org_id=org_id),
            timeout=60,
            wait_for_ready=True,
        )
    return CachedBalance(reply.balance_micros, reply.held_micros)


def settled_count(config: StackConfig, org_ids: Sequence[str]) -> int:
    with billing_db(config) as conn:
        row = conn.execute(
            "SELECT count(*) FROM usage_settlements WHERE org_id = ANY(%s)", (list(org_ids),)
        ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class OrgLedger:
    entries: int
    usage_entries: int
    usage_micros: int  # positive: what usage took
    total_micros: int  # signed sum of every entry: what the balance must be
    wallet_micros: int | None  # the wallets row (None: no row)
    chain_ok: bool  # entries ordered by wallet version: consecutive versions, balance_after adds up


def org_ledger(config: StackConfig, org_id: str) -> OrgLedger:
    with billing_db(config) as conn:
        rows = conn.execute(
            "SELECT amount_micros, kind, balance_after, wallet_version FROM ledger_entries"
            " WHERE org_id = %s ORDER BY wallet_version",
            (org_id,),
        ).fetchall()
        wallet = conn.execute("SELECT balance_micros FROM wallets WHERE org_id = %s", (org_id,)).fetchone()
    chain_ok, balance = True, 0
    for i, (amount, _kind, balance_after, version) in enumerate(rows, start=1):
        balance += amount
        chain_ok = chain_ok and version == i and balance_after == balance
    usage = [amount for amount, kind, _b, _v in rows if kind == "usage"]
    return OrgLedger(
        entries=len(rows),
        usage_entries=len(usage),
        usage_micros=-sum(usage),
        total_micros=balance,
        wallet_micros=None if wallet is None else int(wallet[0]),
        chain_ok=chain_ok,
    )


def charged_request_ids(config: StackConfig, org_id: str) -> dict[str, int]:
    """event id -> micros of every usage ledger entry of an org."""
    with billing_db(config) as conn:
        rows = conn.execute(
            "SELECT ref, -amount_micros FROM ledger_entries WHERE org_id = %s AND kind = 'usage'", (org_id,)
        ).fetchall()
    return {str(ref): int(amount) for ref, amount in rows}


def settled_ids(config: StackConfig, org_id: str) -> set[str]:
    with billing_db(config) as conn:
        rows = conn.execute("SELECT event_id FROM usage_settlements WHERE org_id = %s", (org_id,)).fetchall()
    return {str(r[0]) for r in rows}


class UsageCounter:
    """Counts an organisation set's usage ledger entries over one connection, fast enough to poll
    every few milliseconds (the ledger's (org_id, id) index; usage costs > 0 in the crash test)."""

    def __init__(self, config: StackConfig, org_ids: Sequence[str]) -> None:
        self._conn = billing_db(config)
        self._orgs = list(org_ids)

    def __enter__(self) -> UsageCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()

    def __call__(self) -> int:
        row = self._conn.execute(
            "SELECT count(*) FROM ledger_entries WHERE org_id = ANY(%s) AND kind = 'usage'", (self._orgs,)
        ).fetchone()
        return int(row[0]) if row else 0

    def wait_for(self, target: int, timeout: float = 120) -> int:
        deadline = time.monotonic() + timeout
        while (count := self()) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {target} usage entries; {count} so far")
            time.sleep(0.005)
        return count


def org_alerts(admin: httpx.Client, org_id: str) -> list[dict[str, Any]]:
    """Every alert billing recorded for an organisation (GET /cost/alerts with a platform admin key,
    paged back with before_id), newest first."""
    alerts: list[dict[str, Any]] = []
    params: dict[str, Any] = {"org_id": org_id, "limit": 100}
    while True:
        resp = admin.get("/cost/alerts", params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        alerts += page["data"]
        if not page["has_more"]:
            return alerts
        params["before_id"] = page["data"][-1]["id"]
