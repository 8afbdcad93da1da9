"""A signed-in user's JWT access token as the credential on the model routes (SloughGPT and IndoxRouter),
on the real stack: it pays from the organisation its session acts in, exactly the cost; usage is
recorded with key_id 0 and the user's id; logout ends it (at once at auth and billing, within the
gateway's principal-cache TTL on the model routes); a tampered token is a 401 in every route's own
envelope, before any upstream call."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from pricing_helpers import bearer, register, unique, upstream_calls

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import expected_cost, service_db, wait_until
from tollgate.gateway.config import GatewaySettings

PASSWORD = "jwt-principal-password-1"
MESSAGES = [{"role": "user", "content": "hello how are you"}]
CREDITS_MICROS = 1_000_000


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def provider(admin: httpx.Client, sim_url: str) -> tuple[str, str]:
    """(provider, upstream) of an IndoxRouter model "<provider>/chat": 2 / 10 micros a token."""
    prov, upstream = unique("jwtprov"), unique("jwt")
    register(admin, sim_url, f"{prov}/chat", upstream, price_in=2, price_out=10, price_embedding=5)
    return prov, upstream


@pytest.fixture(scope="module")
def cache_ttl_s(config: StackConfig) -> float:
    """The documented bound on logout at the gateway: its principal-cache TTL."""
    default = GatewaySettings.model_fields["auth_cache_ttl_s"].default
    return float(config.service_env("gateway").get("GATEWAY_AUTH_CACHE_TTL_S", default))


def _register(http: httpx.Client) -> dict[str, Any]:
    email = f"jwt-{uuid.uuid4().hex[:12]}@example.com"
    resp = http.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "Jay"})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _login(http: httpx.Client, email: str) -> str:
    resp = http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def _fund(http: httpx.Client, admin: httpx.Client, token: str) -> None:
    """The admin recharge takes an API key: one of the user's own, made with the token."""
    created = http.post("/auth/api-keys", json={"name": "funding"}, headers=bearer(token))
    assert created.status_code == 201, created.text
    funded = admin.post("/admin/api-key/recharge", json={"api_key": created.json()["api_key"], "balance": 1})
    assert funded.status_code == 200, funded.text


def _balance(http: httpx.Client, token: str) -> int:
    resp = http.get("/v1/credits", headers=bearer(token))
    assert resp.status_code == 200, resp.text
    return int(resp.json()["balance_micros"])


def _usage_rows(config: StackConfig, org_id: str) -> list[tuple[int, str]]:
    with service_db(config, "analytics") as conn:
        rows = conn.execute(
            "SELECT key_id, user_id FROM usage_events WHERE org_id = %s", (org_id,)
        ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def _settled_key_ids(config: StackConfig, org_id: str) -> list[int | None]:
    with service_db(config, "billing") as conn:
        rows = conn.execute("SELECT key_id FROM usage_settlements WHERE org_id = %s", (org_id,)).fetchall()
    return [r[0] for r in rows]


def test_a_sloughgpt_login_token_calls_chat_through_the_openai_sdk_and_pays_exactly(
    http: httpx.Client, admin: httpx.Client, gateway_url: str, config: StackConfig, sim_models: list[str]
) -> None:
    user = _register(http)
    token = _login(http, user["user"]["email"])
    org_id, user_id = user["user"]["org_id"], user["user"]["id"]
    _fund(http, admin, token)
    assert _balance(http, token) == CREDITS_MICROS

    client = OpenAI(base_url=f"{gateway_url}/v1", api_key=token, max_retries=0, timeout=60)
    assert "sim-chat" in {m.id for m in client.models.list()}
    answer = client.chat.completions.create(model="sim-chat", messages=MESSAGES, max_tokens=5)  # type: ignore[arg-type]
    assert answer.usage is not None
    cost = expected_cost(answer.usage.prompt_tokens, answer.usage.completion_tokens)
    assert cost > 0
    wait_until(lambda: _balance(http, token) == CREDITS_MICROS - cost, what="the JWT's chat to be charged")

    # The usage facts name no key (key_id 0) and the signed-in user; billing settled it once.
    wait_until(lambda: _usage_rows(config, org_id), what="analytics to record the call")
    assert _usage_rows(config, org_id) == [(0, user_id)]
    assert _settled_key_ids(config, org_id) == [None]


def test_an_indoxrouter_token_calls_its_routes_and_pays_what_they_report(
    http: httpx.Client, admin: httpx.Client, provider: tuple[str, str]
) -> None:
    user = _register(http)
    issued = http.post("/auth/token", data={"username": user["user"]["email"], "password": PASSWORD})
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    _fund(http, admin, token)
    body = {"messages": MESSAGES, "provider": provider[0], "model": "chat", "max_tokens": 4}
    chat = http.post("/chat/completions", json=body, headers=bearer(token))
    assert chat.status_code == 200, chat.text
    assert chat.json()["success"] is True
    embedded = http.post(
        "/embeddings",
        json={"provider": provider[0], "model": "chat", "text": "Hello, world!"},
        headers=bearer(token),
    )
    assert embedded.status_code == 200, embedded.text
    info = http.get(f"/models/{provider[0]}/chat", headers=bearer(token))
    assert info.status_code == 200 and info.json()["id"] == "chat"
    cost = sum(round(r.json()["usage"]["cost"] * 1_000_000) for r in (chat, embedded))
    assert cost == 4 * 2 + 4 * 10 + 2 * 5  # 4 prompt + 4 completion tokens, 2 embedded tokens
    wait_until(
        lambda: _balance(http, token) == CREDITS_MICROS - cost, what="the IndoxRouter calls to be charged"
    )


def test_logout_ends_the_token_everywhere_within_the_documented_bound(
    http: httpx.Client, gateway_url: str, cache_ttl_s: float, sim_models: list[str]
) -> None:
    user = _register(http)
    token = _login(http, user["user"]["email"])
    client = OpenAI(base_url=f"{gateway_url}/v1", api_key=token, max_retries=0, timeout=30)
    client.models.list()  # cached in the gateway now
    assert http.get("/v1/credits", headers=bearer(token)).status_code == 200
    out = http.post("/auth/logout", headers=bearer(token))
    assert out.status_code == 200, out.text

    # Auth itself and billing's routes (no principal cache) refuse it at once.
    assert http.get("/auth/me", headers=bearer(token)).status_code == 401
    credits = http.get("/v1/credits", headers=bearer(token))
    assert credits.status_code == 401 and credits.json()["error"]["code"] == "invalid_api_key"
    # The gateway's model routes: once its cached principal has expired (the TTL; polled, not timed).
    wait_until(
        lambda: http.get("/v1/models", headers=bearer(token)).status_code == 401,
        timeout=cache_ttl_s + 5,
        what="the gateway to refuse the logged-out token",
    )
    with pytest.raises(openai.AuthenticationError) as refused:
        client.chat.completions.create(model="sim-chat", messages=MESSAGES, max_tokens=1)  # type: ignore[arg-type]
    assert refused.value.status_code == 401
    refusal = http.post("/v1/chat/completions", json={"model": "sim-chat"}, headers=bearer(token)).json()
    assert refusal["error"]["message"] == "This session has ended; sign in again."


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["org"] = "org_system"  # someone else's organisation, with the original signature
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _openai_401(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", "invalid_api_key")
    assert error["message"] == "Invalid access token."


def _indoxrouter_401(resp: httpx.Response) -> None:
    body = resp.json()
    assert resp.status_code == 401, body
    assert set(body) == {"error", "message", "status_code", "details"}
    assert (body["error"], body["status_code"]) == ("authentication_error", 401) and body["message"]


def test_a_tampered_token_is_401_in_every_routes_envelope_and_calls_no_upstream(
    http: httpx.Client,
    admin: httpx.Client,
    provider: tuple[str, str],
    sim_url: str,
    sim_models: list[str],
) -> None:
    user = _register(http)
    token = user["access_token"]
    _fund(http, admin, token)
    forged = {"Authorization": f"Bearer {_tampered(token)}"}
    called = upstream_calls(sim_url, provider[1])
    chat = {"model": "sim-chat", "messages": MESSAGES, "max_tokens": 1}
    _openai_401(http.post("/v1/chat/completions", json=chat, headers=forged))
    _openai_401(http.post("/v1/completions", json={"model": "sim-chat", "prompt": "hi"}, headers=forged))
    _openai_401(http.post("/v1/embeddings", json={"model": "sim-chat", "input": "hi"}, headers=forged))
    _openai_401(
        http.post("/v1/images/generations", json={"model": "sim-chat", "prompt": "x"}, headers=forged)
    )
    _openai_401(http.get("/v1/models", headers=forged))
    _openai_401(http.get("/v1/credits", headers=forged))
    credit_chat = http.post("/api/v1/chat", json={"model": "sim-chat", "messages": MESSAGES}, headers=forged)
    assert (credit_chat.status_code, credit_chat.json()) == (401, {"error": "Invalid API key"})
    common = {"provider": provider[0], "model": "chat"}
    _indoxrouter_401(http.post("/chat/completions", json={**common, "messages": MESSAGES}, headers=forged))
    _indoxrouter_401(http.post("/completions", json={**common, "prompt": "hi"}, headers=forged))
    _indoxrouter_401(http.post("/embeddings", json={**common, "text": "hi"}, headers=forged))
    _indoxrouter_401(http.post("/images/generations", json={**common, "prompt": "x"}, headers=forged))
    _indoxrouter_401(http.get(f"/models/{provider[0]}/chat", headers=forged))
    assert upstream_calls(sim_url, provider[1]) == called
    # The genuine token still works, and its organisation paid nothing for the forgeries.
    assert _balance(http, token) == CREDITS_MICROS
    assert (
        http.post(
            "/chat/completions", json={**common, "messages": MESSAGES}, headers=bearer(token)
        ).status_code
        == 200
    )
