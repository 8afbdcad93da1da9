"""The Feishu simulator: tenant tokens, replies with Feishu's uuid de-duplication, and pushes
encrypted and signed as Feishu does (checked by decrypting independently here)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tollgate.feishu_sim.app import create_app


def decrypt(encrypted: str, key: str) -> str:
    data = base64.b64decode(encrypted)
    decryptor = Cipher(
        algorithms.AES(hashlib.sha256(key.encode()).digest()), modes.CBC(data[:16])
    ).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return (
        unpadder.update(decryptor.update(data[16:]) + decryptor.finalize()) + unpadder.finalize()
    ).decode()


def bot_endpoint(seen: list[tuple[dict[str, str], bytes]]) -> Starlette:
    async def events(request: Request) -> JSONResponse:
        seen.append((dict(request.headers), await request.body()))
        return JSONResponse({"code": 0})

    return Starlette(routes=[Route("/events", events, methods=["POST"])])


@pytest.fixture
async def sim() -> AsyncIterator[tuple[httpx.AsyncClient, list[tuple[dict[str, str], bytes]]]]:
    seen: list[tuple[dict[str, str], bytes]] = []
    to_bot = httpx.AsyncClient(transport=httpx.ASGITransport(app=bot_endpoint(seen)), base_url="http://bot")
    app = create_app(client=to_bot)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://feishu") as client:
        await client.post("/_sim/apps", json={"app_id": "cli_1", "app_secret": "s3cret"})
        yield client, seen


async def token(client: httpx.AsyncClient, secret: str = "s3cret") -> httpx.Response:
    return await client.post(
        "/open-apis/auth/v3/tenant_access_token/internal", json={"app_id": "cli_1", "app_secret": secret}
    )


async def test_tenant_tokens_need_the_app_secret(sim: Any) -> None:
    client, _ = sim
    good = await token(client)
    assert good.status_code == 200
    assert good.json()["code"] == 0 and good.json()["tenant_access_token"].startswith("t-")
    assert good.json()["expire"] == 7200
    bad = await token(client, "wrong")
    assert bad.status_code == 400 and bad.json()["code"] == 10014


async def test_replies_are_recorded_once_per_uuid_and_need_a_token(sim: Any) -> None:
    client, _ = sim
    tenant = (await token(client)).json()["tenant_access_token"]
    body = {"msg_type": "text", "content": orjson.dumps({"text": "hi"}).decode(), "uuid": "ev-1"}
    unauthorised = await client.post("/open-apis/im/v1/messages/om_1/reply", json=body)
    assert unauthorised.status_code == 400 and unauthorised.json()["code"] == 99991663
    headers = {"authorization": f"Bearer {tenant}"}
    first = await client.post("/open-apis/im/v1/messages/om_1/reply", json=body, headers=headers)
    again = await client.post("/open-apis/im/v1/messages/om_1/reply", json=body, headers=headers)
    assert first.json()["code"] == 0
    assert again.json()["data"]["message_id"] == first.json()["data"]["message_id"]
    replies = (await client.get("/_sim/replies", params={"app_id": "cli_1"})).json()["replies"]
    assert [(r["parent_id"], r["text"], r["uuid"]) for r in replies] == [("om_1", "hi", "ev-1")]


async def test_pushes_are_encrypted_and_signed_like_feishus(sim: Any) -> None:
    client, seen = sim
    answer = await client.post(
        "/_sim/deliver/message",
        json={"url": "http://bot/events", "app_id": "cli_1", "text": "hello", "encrypt_key": "ek"},
    )
    assert answer.json()["status"] == 200
    headers, raw = seen[-1]
    ts, nonce = headers["x-lark-request-timestamp"], headers["x-lark-request-nonce"]
    wanted = hashlib.sha256((ts + nonce + "ek").encode() + raw).hexdigest()
    assert headers["x-lark-signature"] == wanted
    event = orjson.loads(decrypt(orjson.loads(raw)["encrypt"], "ek"))
    assert event == answer.json()["payload"]
    assert event["header"]["event_type"] == "im.message.receive_v1"
    assert orjson.loads(event["event"]["message"]["content"]) == {"text": "hello"}

    await client.post(
        "/_sim/deliver/message",
        json={
            "url": "http://bot/events",
            "app_id": "cli_1",
            "text": "x",
            "encrypt_key": "ek",
            "bad_signature": True,
        },
    )
    headers, raw = seen[-1]
    ts, nonce = headers["x-lark-request-timestamp"], headers["x-lark-request-nonce"]
    assert headers["x-lark-signature"] != hashlib.sha256((ts + nonce + "ek").encode() + raw).hexdigest()

    await client.post(
        "/_sim/deliver/url_verification", json={"url": "http://bot/events", "verification_token": "vt"}
    )
    headers, raw = seen[-1]
    assert "x-lark-signature" not in headers  # without an encrypt key nothing is signed
    assert orjson.loads(raw)["type"] == "url_verification" and orjson.loads(raw)["token"] == "vt"
