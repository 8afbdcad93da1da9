"""Secrets stay secret: after keys are created, users registered and requests made, no API key,
password, token or provider key appears in any service log nor in plaintext in any table, and a key
is shown only once, at creation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, chat_status, service_db, sign_up, wait_until

# Column types whose values are scanned for plaintext secrets.
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea")


@dataclass(frozen=True)
class Secrets:
    named: dict[str, str]  # what it is -> the secret
    keys: list[str]  # the API keys among them


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def secrets(
    http: httpx.Client,
    admin: httpx.Client,
    config: StackConfig,
    new_account: Callable[..., Account],
    sim_url: str,
) -> Secrets:
    user = sign_up(http)
    login = http.post("/auth/login", json={"email": user.email, "password": user.password})
    assert login.status_code == 200, login.text
    rotated = http.post("/auth/refresh", headers=_bearer(login.json()["refresh_token"]))
    assert rotated.status_code == 200, rotated.text
    wrong = f"wrong-{uuid.uuid4().hex}"
    assert http.post("/auth/login", json={"email": user.email, "password": wrong}).status_code == 401

    user_key = http.post("/auth/api-keys", json={"name": "sec"}, headers=_bearer(user.access_token))
    assert user_key.status_code == 201, user_key.text
    credit_chat = http.post("/api/keys", json={"name": "sec-002"}, headers=_bearer(user.access_token))
    assert credit_chat.status_code == 200, credit_chat.text
    applied = new_account(credits=1)

    provider_key = f"sk-provider-{uuid.uuid4().hex}"
    saved = admin.post(
        "/admin/model/save",
        json={
            "name": f"sec-model-{uuid.uuid4().hex[:6]}",
            "provider": "openai-compatible",
            "config": json.dumps({"base_url": f"{sim_url}/v1", "model": "sim-chat", "api_key": provider_key}),
            "price_in": 0,
            "price_out": 0,
        },
    )
    assert saved.status_code == 200, saved.text
    model = saved.json()["name"]

    keys = [user_key.json()["api_key"], credit_chat.json()["key"], applied.key]
    assert admin.post("/admin/api-key/recharge", json={"api_key": keys[0], "balance": 1}).status_code == 200
    for key in keys:
        assert http.get("/auth/me", headers=_bearer(key)).status_code == 200
        http.get("/v1/credits", headers=_bearer(key))
    for key in (keys[0], keys[2]):
        assert chat_status(http, key) == 200
        assert chat_status(http, key, model) == 200
    # a refused request carrying a key must not log it either
    assert http.get("/v1/models", headers=_bearer(keys[0] + "x")).status_code == 401
    named = {
        "password": user.password,
        "wrong_password": wrong,
        "refresh_token_of_register": user.refresh_token,
        "refresh_token_of_login": login.json()["refresh_token"],
        "refresh_token_rotated": rotated.json()["refresh_token"],
        "access_token": user.access_token,
        "user_key": keys[0],
        "credit_chat_key": keys[1],
        "bedrock_gateway_key": applied.key,
        "admin_key": config.admin_api_key,
        "provider_api_key": provider_key,
    }
    # the part after the displayed prefix is the secret proper: a truncated key must not leak either
    for key in keys:
        named[f"tail_of_{key[:10]}"] = key[-20:]
    return Secrets(named, keys)


def _leaks_in(text: str, secrets: Secrets) -> list[str]:
    return [what for what, secret in secrets.named.items() if secret in text]


def test_no_secret_in_any_service_log(config: StackConfig, secrets: Secrets) -> None:
    logs = sorted(p for p in config.logs_dir.rglob("*") if p.is_file())
    assert any(p.name == "gateway.log" for p in logs), logs
    # let the services flush what they logged for the requests above
    wait_until(lambda: (config.logs_dir / "gateway.log").stat().st_size > 0, timeout=5, what="gateway log")
    found = {
        p.name: leaks
        for p in logs
        if (leaks := _leaks_in(p.read_text(encoding="utf-8", errors="replace"), secrets))
    }
    assert found == {}, f"secrets in logs: {found}"


def _columns_containing(conn: Any, columns: list[Any], needle: str) -> list[str]:
    hits = []
    for schema, table, column, data_type in columns:
        value = f'"{column}"' if data_type == "bytea" else f'"{column}"::text'
        probe: object = needle.encode() if data_type == "bytea" else needle
        row = conn.execute(
            f'SELECT count(*) FROM "{schema}"."{table}" WHERE position(%s in {value}) > 0', (probe,)
        ).fetchone()
        if row and row[0]:
            hits.append(f"{table}.{column}")
    return hits


@pytest.mark.parametrize("svc", ["auth", "billing", "gateway"])
def test_no_plaintext_secret_in_any_table(config: StackConfig, secrets: Secrets, svc: str) -> None:
    with service_db(config, svc) as conn:
        columns = conn.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND data_type = ANY(%s)"
            " AND table_name IN (SELECT table_name FROM information_schema.tables"
            "  WHERE table_type = 'BASE TABLE')",
            (list(TEXT_TYPES),),
        ).fetchall()
        assert columns
        if svc == "auth":
            # the scan finds what is stored: a key's public prefix is kept on purpose
            prefix = secrets.keys[0][:11]
            assert "api_keys.key_prefix" in _columns_containing(conn, columns, prefix)
        found = [
            f"{hit}: {what}"
            for what, secret in secrets.named.items()
            for hit in _columns_containing(conn, columns, secret)
        ]
    assert found == [], f"plaintext secrets in tollgate_{svc}: {found}"


def test_a_key_is_never_shown_again(http: httpx.Client, admin: httpx.Client, secrets: Secrets) -> None:
    user = sign_up(http)
    created = http.post("/auth/api-keys", json={"name": "once"}, headers=_bearer(user.access_token))
    assert created.status_code == 201, created.text
    key, key_id = created.json()["api_key"], created.json()["id"]
    generated = http.post("/api/keys", json={"name": "once-002"}, headers=_bearer(user.access_token))
    assert generated.status_code == 200, generated.text
    keys = [key, generated.json()["key"], *secrets.keys]
    views = [
        http.get("/auth/api-keys", headers=_bearer(user.access_token)),
        http.get("/api/keys", headers=_bearer(user.access_token)),
        http.get("/auth/me", headers=_bearer(key)),
        http.get("/auth/api-keys", headers=_bearer(key)),
        admin.get("/admin/api-key/list", params={"limit": 100}),
        admin.get("/admin/api-key/models", params={"key_id": key_id}),
        admin.get("/admin/model/list", params={"limit": 500}),
        admin.get("/admin/payment/list", params={"limit": 100}),
    ]
    for resp in views:
        assert resp.status_code == 200, f"{resp.request.url}: {resp.text}"
        shown = [k[:12] for k in keys if k in resp.text or k[-20:] in resp.text]
        assert shown == [], f"{resp.request.url} shows keys {shown}"
        assert secrets.named["provider_api_key"] not in resp.text, resp.request.url
