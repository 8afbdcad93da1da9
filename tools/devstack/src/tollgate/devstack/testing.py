"""Support for the integration tests: polling, accounts, clients and read-only ledger checks."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import psycopg

from tollgate.devstack.config import StackConfig

T = TypeVar("T")

# Prices in credits per 1M tokens: 2 and 10 credits make 2 and 10 micro-credits a token.
PRICE_IN = 2
PRICE_OUT = 10
MICROS_PER_TOKEN_IN = 2
MICROS_PER_TOKEN_OUT = 10


def wait_until(probe: Callable[[], T | None], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Polls an eventually-consistent fact (a consumer catching up); not a timing assertion."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@dataclass(frozen=True)
class Account:
    key: str
    key_id: int
    org_id: str
    user_id: str


def register_model(
    admin: httpx.Client,
    name: str,
    upstream_model: str,
    base_url: str,
    *,
    price_in: float = PRICE_IN,
    price_out: float = PRICE_OUT,
) -> dict[str, Any]:
    body = {
        "name": name,
        "provider": "openai-compatible",
        "config": json.dumps(
            {"base_url": f"{base_url}/v1", "model": upstream_model, "api_key": "sk-sim-secret"}
        ),
        "price_in": price_in,
        "price_out": price_out,
    }
    resp = admin.post("/admin/model/save", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def balance_micros(gateway_url: str, key: str) -> int:
    resp = httpx.get(f"{gateway_url}/v1/credits", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    return int(resp.json()["balance_micros"])


def billing_db(config: StackConfig) -> psycopg.Connection[Any]:
    """A look at billing's ledger, to prove exactly-once beyond what the API shows."""
    dsn = config.database_url("billing").replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True)


def settled_events(config: StackConfig, org_id: str) -> int:
    with billing_db(config) as conn:
        row = conn.execute("SELECT count(*) FROM usage_settlements WHERE org_id = %s", (org_id,)).fetchone()
    return int(row[0]) if row else 0


def ledger_usage(config: StackConfig, org_id: str) -> tuple[int, int]:
    """(number of usage ledger entries, their total in micros as a positive number) for one organisation."""
    with billing_db(config) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(-sum(amount_micros), 0) FROM ledger_entries"
            " WHERE org_id = %s AND kind = 'usage'",
            (org_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def sim_chat_count(sim_url: str) -> int:
    return int(httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()["chat_completions"])


def expected_cost(prompt_tokens: int, completion_tokens: int) -> int:
    return prompt_tokens * MICROS_PER_TOKEN_IN + completion_tokens * MICROS_PER_TOKEN_OUT


def service_db(config: StackConfig, svc: str) -> psycopg.Connection[Any]:
    """A read-mostly look at one service's database (security tests scan every table)."""
    dsn = config.database_url(svc).replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True)


@dataclass(frozen=True)
class SignedIn:
    """A user registered through /auth/register, with the secrets the platform must never leak."""

    email: str
    password: str
    access_token: str
    refresh_token: str
    user_id: str
    org_id: str


def sign_up(http: httpx.Client, password: str | None = None) -> SignedIn:
    email = f"sec-{uuid.uuid4().hex[:12]}@example.com"
    secret = password or f"pw-{uuid.uuid4().hex}"
    resp = http.post("/auth/register", json={"email": email, "password": secret, "name": "Sec"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return SignedIn(
        email, secret, body["access_token"], body["refresh_token"], body["user"]["id"], body["user"]["org_id"]
    )


def chat_status(http: httpx.Client, key: str, model: str = "sim-chat") -> int:
    """The gateway's decision for (key, model) on the cheapest real chat call."""
    resp = http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        headers={"Authorization": f"Bearer {key}"},
    )
    return resp.status_code
