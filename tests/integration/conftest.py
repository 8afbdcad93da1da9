"""The whole platform, for real: PostgreSQL, Redis, Kafka and every service as its own process.

The session brings the `test` profile of the local stack up (separate ports and data from `make run`),
registers models pointing at the project's own upstream simulator (the only stand-in: for model
providers), and tears the stack down at the end unless TOLLGATE_KEEP_STACK=1.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from openai import OpenAI

from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import PRICE_OUT, Account, register_model


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    # TOLLGATE_TEST_PROFILE runs the suite on a private stack (with TOLLGATE_PORT_OFFSET)
    platform = Stack(StackConfig.from_env(profile=os.environ.get("TOLLGATE_TEST_PROFILE", "test")))
    platform.up(local_model=True)
    yield platform
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        platform.down()


@pytest.fixture(scope="session")
def config(stack: Stack) -> StackConfig:
    return stack.cfg


@pytest.fixture(scope="session")
def gateway_url(config: StackConfig) -> str:
    return config.url("gateway")


@pytest.fixture(scope="session")
def sim_url(config: StackConfig) -> str:
    return config.url("upstream_sim")


@pytest.fixture(scope="session")
def admin(config: StackConfig, gateway_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {config.admin_api_key}"}
    with httpx.Client(base_url=gateway_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def sim_models(admin: httpx.Client, sim_url: str) -> list[str]:
    """Models served by the upstream simulator; its behaviour follows the upstream model name."""
    names = ["sim-chat", "sim-chat-nousage", "sim-chat-slow", "sim-chat-error", "sim-chat-timeout"]
    for name in names:
        register_model(admin, name, name, sim_url)
    # Output-only pricing: the hold (max_tokens * price_out) equals the actual cost exactly.
    register_model(admin, "sim-flat-slow", "sim-flat-slow", sim_url, price_in=0, price_out=PRICE_OUT)
    return [*names, "sim-flat-slow"]


@pytest.fixture(scope="session")
def new_account(admin: httpx.Client, sim_models: list[str]) -> Callable[..., Account]:
    """A user with a personal organisation and a key (the Bedrock-style gateway), recharged with
    `credits` if given."""

    def create(credits: float = 0, *, role: str = "user", group_id: int = 1) -> Account:
        resp = admin.post(
            "/admin/api-key/apply",
            json={"name": f"user-{uuid.uuid4().hex[:8]}", "group_id": group_id, "role": role, "email": ""},
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["api_key"].startswith("tg_")
        account = Account(body["api_key"], body["id"], body["org_id"], body["user_id"])
        if credits:
            recharge = admin.post(
                "/admin/api-key/recharge", json={"api_key": account.key, "balance": credits}
            )
            assert recharge.status_code == 200, recharge.text
        return account

    return create


@pytest.fixture(scope="session")
def client_for(gateway_url: str) -> Callable[[str], OpenAI]:
    """The official openai SDK pointed at the gateway, no retries (a retry would hide a failure)."""

    def make(key: str) -> OpenAI:
        return OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=60)

    return make


@pytest.fixture
def owner(new_account: Callable[..., Account], gateway_url: str) -> Iterator[tuple[Account, httpx.Client]]:
    """A funded account and a client that speaks with its key (the alert tests' org owner)."""
    account = new_account(credits=1)
    with httpx.Client(
        base_url=gateway_url, headers={"Authorization": f"Bearer {account.key}"}, timeout=30
    ) as c:
        yield account, c
