"""Rate tiers and limits set by an admin reach the principal the gateway gets (issue 12), on the
real stack: the admin sets a key's tier and override through the gateway, an organisation's at
auth, and then (1) auth.keys.v1 carries the ApiKeyChanged that drops the gateway's cached principal
and (2) Authenticate, the gateway's cache-miss call, answers with the new limits. The gateway's
enforcement of them has its own tests (test_rate_limits.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from tollgate.common.auth_client import NO_RATE_LIMITS, Principal, RateLimits
from tollgate.common.kafka import TOPIC_AUTH_KEYS
from tollgate.contracts.v1 import auth_pb2, auth_pb2_grpc, events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account


@pytest.fixture(scope="module")
def auth_admin(config: StackConfig) -> Iterator[httpx.Client]:
    """Auth's own HTTP port (the gateway forwards /admin/rate-tier/* and /admin/org/* there too)."""
    headers = {"Authorization": f"Bearer {config.admin_api_key}"}
    with httpx.Client(base_url=config.url("auth"), headers=headers, timeout=30) as client:
        yield client


def authenticate(config: StackConfig, api_key: str) -> Principal:
    with grpc.insecure_channel(config.grpc_target("auth")) as channel:
        reply = auth_pb2_grpc.AuthServiceStub(channel).Authenticate(
            auth_pb2.AuthenticateRequest(api_key=api_key), timeout=30, wait_for_ready=True
        )
    assert reply.ok, reply.reason
    return Principal.from_proto(reply.principal)


def key_changes(config: StackConfig, key_id: int, want: int, timeout_s: float = 30) -> list[str]:
    """The `change` of each ApiKeyChanged for `key_id` on auth.keys.v1, from its start."""

    async def read() -> list[str]:
        consumer = AIOKafkaConsumer(
            TOPIC_AUTH_KEYS,
            bootstrap_servers=config.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[str] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while len(found) < want and loop.time() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        if r.key == str(key_id).encode():
                            found.append(events_pb2.ApiKeyChanged.FromString(r.value or b"").change)
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def test_a_keys_tier_and_override_reach_its_principal_after_the_announcement(
    admin: httpx.Client, config: StackConfig, new_account: Callable[..., Account]
) -> None:
    account = new_account()
    # not limited until an admin says so: existing users keep working as before
    before = authenticate(config, account.key)
    assert before.key_limits == NO_RATE_LIMITS and before.org_limits == NO_RATE_LIMITS

    resp = admin.post("/admin/api-key/limits", json={"id": account.key_id, "tier": "free", "tpd": 500})
    assert resp.status_code == 200, resp.text
    assert resp.json()["effective"] == {"tier": "free", "rpm": 100, "tpm": None, "tpd": 500}

    assert key_changes(config, account.key_id, want=1) == ["updated"]
    principal = authenticate(config, account.key)
    assert principal.key_limits == RateLimits("free", rpm=100, tpm=0, tpd=500)
    assert principal.org_limits == NO_RATE_LIMITS

    listed = admin.get("/admin/api-key/list", params={"q": principal.key_prefix}).json()["data"]
    assert listed[0]["limits"] == {"tier": "free", "rpm": None, "tpm": None, "tpd": 500}


def test_an_organisations_limits_reach_its_keys_principals(
    auth_admin: httpx.Client, config: StackConfig, new_account: Callable[..., Account]
) -> None:
    account = new_account()
    resp = auth_admin.post("/admin/org/limits", json={"org_id": account.org_id, "tier": "pro", "tpm": 5_000})
    assert resp.status_code == 200, resp.text

    assert key_changes(config, account.key_id, want=1) == ["updated"]
    principal = authenticate(config, account.key)
    assert principal.org_limits == RateLimits("pro", rpm=1_000, tpm=5_000, tpd=100_000)
    assert principal.key_limits == NO_RATE_LIMITS  # separate limits: the key has none of its own


def test_an_edited_tier_reaches_its_keys_and_cannot_be_deleted_while_used(
    auth_admin: httpx.Client, config: StackConfig, new_account: Callable[..., Account]
) -> None:
    name = f"it-{uuid.uuid4().hex[:8]}"
    assert auth_admin.post("/admin/rate-tier/save", json={"name": name, "rpm": 30}).status_code == 200
    account = new_account()
    assigned = auth_admin.post("/admin/api-key/limits", json={"id": account.key_id, "tier": name})
    assert assigned.status_code == 200, assigned.text
    assert auth_admin.post("/admin/rate-tier/save", json={"name": name, "rpm": 40}).status_code == 200

    assert key_changes(config, account.key_id, want=2) == ["updated", "updated"]
    assert authenticate(config, account.key).key_limits == RateLimits(name, rpm=40)

    refused = auth_admin.post("/admin/rate-tier/delete", json={"name": name})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "rate_tier_in_use"
