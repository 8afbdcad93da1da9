"""A rule-based property test of model authorisation against the real stack: after every step
(create key, revoke, grant/deauthorise a model to the group or to a key) the gateway's decision for
every (key, model) equals a tiny reference model of the rules:

    revoked -> 401; grants = key grants | group grants; no grants -> every model (200); else 200 iff
    the model is granted, 403 otherwise.

Each example uses a fresh group, so examples are independent; waits for cache invalidation are
bounded polls (2 s), never blind sleeps."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tollgate.devstack.testing import chat_status, wait_until

MODELS = ("sim-chat", "sim-chat-nousage")
SETTINGS = settings(
    max_examples=15,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
)


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


def expected(revoked: bool, key_grants: set[str], group_grants: set[str], model: str) -> int:
    if revoked:
        return 401
    granted = key_grants | group_grants
    return 200 if not granted or model in granted else 403


def test_gateway_decisions_follow_the_grant_rules(
    http: httpx.Client, admin: httpx.Client, sim_models: list[str]
) -> None:
    assert set(MODELS) <= set(sim_models)

    def ok(resp: httpx.Response) -> dict[str, object]:
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    class Grants(RuleBasedStateMachine):
        keys = Bundle("keys")

        def __init__(self) -> None:
            super().__init__()
            group = ok(admin.post("/admin/group/save", json={"name": f"prop-{uuid.uuid4().hex[:10]}"}))
            self.group_id = int(group["id"])  # type: ignore[call-overload]
            self.group_grants: set[str] = set()
            self.key_grants: dict[int, set[str]] = {}
            self.revoked: set[int] = set()
            self.secrets: dict[int, str] = {}

        def _model(self) -> dict[tuple[int, str], int]:
            return {
                (key_id, model): expected(
                    key_id in self.revoked, self.key_grants[key_id], self.group_grants, model
                )
                for key_id in self.secrets
                for model in MODELS
            }

        def _gateway(self) -> dict[tuple[int, str], int]:
            return {(k, m): chat_status(http, self.secrets[k], m) for k in self.secrets for m in MODELS}

        @rule(target=keys)
        def create_key(self) -> int:
            body = ok(
                admin.post(
                    "/admin/api-key/apply",
                    json={"name": f"prop-{uuid.uuid4().hex[:8]}", "group_id": self.group_id, "role": "user"},
                )
            )
            key_id, secret = int(body["id"]), str(body["api_key"])  # type: ignore[call-overload]
            ok(admin.post("/admin/api-key/recharge", json={"api_key": secret, "balance": 1}))
            self.secrets[key_id] = secret
            self.key_grants[key_id] = set()
            return key_id

        @rule(key_id=consumes(keys))
        def revoke(self, key_id: int) -> None:
            ok(admin.post("/admin/api-key/delete", json={"id": key_id}))
            self.revoked.add(key_id)

        @rule(model=st.sampled_from(MODELS), grant=st.booleans())
        def group_grant(self, model: str, grant: bool) -> None:
            action = "authorize" if grant else "deauthorize"
            ok(
                admin.post(
                    f"/admin/group/models/{action}", json={"group_id": self.group_id, "models": [model]}
                )
            )
            (self.group_grants.add if grant else self.group_grants.discard)(model)

        @rule(key_id=keys, model=st.sampled_from(MODELS), grant=st.booleans())
        def key_grant(self, key_id: int, model: str, grant: bool) -> None:
            action = "authorize" if grant else "deauthorize"
            ok(admin.post(f"/admin/api-key/models/{action}", json={"key_id": key_id, "models": [model]}))
            (self.key_grants[key_id].add if grant else self.key_grants[key_id].discard)(model)

        @invariant()
        def gateway_agrees_with_the_model(self) -> None:
            want = self._model()
            if not want:
                return
            seen: dict[str, dict[tuple[int, str], int]] = {}

            def agrees() -> bool:
                seen["last"] = self._gateway()
                return seen["last"] == want

            try:
                wait_until(agrees, timeout=2.0, what="the gateway to follow the grants")
            except AssertionError:
                diff = {k: (seen["last"].get(k), v) for k, v in want.items() if seen["last"].get(k) != v}
                raise AssertionError(f"(gateway, expected) per (key, model): {diff}") from None

        def teardown(self) -> None:
            # Revoke what is left so the group holds no active key (it could then be deleted).
            for key_id in set(self.secrets) - self.revoked:
                admin.post("/admin/api-key/delete", json={"id": key_id})

    run_state_machine_as_test(Grants, settings=SETTINGS)
