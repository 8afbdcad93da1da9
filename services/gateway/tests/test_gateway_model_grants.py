"""Model authorisation at the gateway: a restricted key gets 403 for other models, before any hold
or upstream call, and /v1/models lists only what it may call."""

from __future__ import annotations

from collections.abc import AsyncIterator

import gateway_fakes
import httpx
import pytest
from gateway_fakes import FakeAuth, Harness, entry
from prometheus_client import CollectorRegistry

from tollgate.common.auth_client import Principal
from tollgate.common.http import create_app
from tollgate.gateway.catalog import routes as catalog_routes
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.dependencies import principal_dependency

LIMITED = Principal(
    9, "org-1", "user-9", "user", 5, ("read", "write"), "tg_limited", 0, 0,
    models_restricted=True, granted_models=frozenset({"gpt-sim"}),
)  # fmt: skip
NOTHING = Principal(
    10, "org-1", "user-10", "user", 5, ("read", "write"), "tg_nothing", 0, 0, models_restricted=True
)


@pytest.fixture(autouse=True)
def restricted_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(gateway_fakes.PRINCIPALS, "limited-key", LIMITED)
    monkeypatch.setitem(gateway_fakes.PRINCIPALS, "nothing-key", NOTHING)


def chat(model: str, **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}


def test_may_use() -> None:
    assert LIMITED.may_use("gpt-sim") and not LIMITED.may_use("gpt-nousage")
    assert not NOTHING.may_use("gpt-sim")
    assert gateway_fakes.PRINCIPALS["user-key"].may_use("whatever")  # unrestricted by default


@pytest.mark.parametrize("stream", [False, True])
async def test_a_model_not_granted_is_refused_before_any_hold(harness: Harness, stream: bool) -> None:
    headers = {"authorization": "Bearer limited-key"}
    refused = await harness.client.post(
        "/v1/chat/completions", json=chat("gpt-nousage", stream=stream), headers=headers
    )
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "permission_error",
        "model_not_allowed",
        "model",
    )
    assert "gpt-nousage" in error["message"]
    assert harness.billing.reserves == [] and harness.emitter.events == []

    allowed = await harness.client.post("/v1/chat/completions", json=chat("gpt-sim"), headers=headers)
    assert allowed.status_code == 200, allowed.text
    assert len(harness.billing.reserves) == 1


async def test_a_key_restricted_to_nothing_may_call_nothing(harness: Harness) -> None:
    resp = await harness.client.post(
        "/v1/chat/completions", json=chat("gpt-sim"), headers={"authorization": "Bearer nothing-key"}
    )
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "model_not_allowed")
    # an unknown model is still a 404, whoever asks
    unknown = await harness.client.post(
        "/v1/chat/completions", json=chat("no-such-model"), headers={"authorization": "Bearer limited-key"}
    )
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")
    assert harness.billing.reserves == []


class FixedSnapshot:
    """The catalog's read side: /v1/models only calls entries()."""

    def __init__(self, entries: list[CatalogEntry]) -> None:
        self._entries = entries

    def entries(self) -> list[CatalogEntry]:
        return self._entries


@pytest.fixture
async def models_client() -> AsyncIterator[httpx.AsyncClient]:
    upstream = httpx.AsyncClient()
    snapshot = FixedSnapshot([entry(n, n, upstream) for n in ("gpt-sim", "gpt-other", "gpt-third")])
    registry = CollectorRegistry()
    cache = PrincipalCache(FakeAuth().authenticate, GatewayMetrics(registry))
    app = create_app("gateway", registry)
    app.include_router(
        catalog_routes.build_router(
            None,  # type: ignore[arg-type]  # the admin routes are not called here
            snapshot,  # type: ignore[arg-type]
            SecretBox("test"),
            principal_dependency(cache),
            4096,
        )
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client
    await upstream.aclose()


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("user-key", ["gpt-sim", "gpt-other", "gpt-third"]),
        ("limited-key", ["gpt-sim"]),
        ("nothing-key", []),
    ],
)
async def test_v1_models_lists_only_what_the_key_may_call(
    models_client: httpx.AsyncClient, key: str, expected: list[str]
) -> None:
    resp = await models_client.get("/v1/models", headers={"authorization": f"Bearer {key}"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == expected
