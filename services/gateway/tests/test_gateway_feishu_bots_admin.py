"""Bot admin rules (bots/service.py) and the Feishu client (bots/clients.py) against the simulator:
the seed's config forms, secrets encrypted and masked, tokens cached and renewed, replies sent once."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest

from tollgate.common.errors import InvalidRequest
from tollgate.feishu_sim.app import create_app
from tollgate.gateway.bots.clients import FeishuClient, FeishuError, ModelCaller
from tollgate.gateway.bots.models import FeishuBot
from tollgate.gateway.bots.schemas import BotSaveIn
from tollgate.gateway.bots.service import merged_config, to_out
from tollgate.gateway.catalog.secrets import SecretBox


def test_config_as_a_json_string_an_object_or_top_level_fields() -> None:
    as_string = BotSaveIn(
        name="b", config='{"appId": "cli_1", "apiKey": "k", "modelId": "m", "appSecret": "s"}'
    )
    assert merged_config(as_string) == {"appId": "cli_1", "apiKey": "k", "modelId": "m", "appSecret": "s"}
    # the seed's update body: the fields at the top level, winning over config's
    update = BotSaveIn(config={"appId": "cli_1", "modelId": "m"}, modelId="m2", appSecret="s2")
    assert merged_config(update) == {"appId": "cli_1", "modelId": "m2", "appSecret": "s2"}
    for bad in ("{not json", "[1]", '{"appId": 1}', '{"app_secret": "s"}'):
        with pytest.raises(InvalidRequest):
            merged_config(BotSaveIn(config=bad))


def test_the_admin_view_masks_every_secret() -> None:
    box = SecretBox("unit-test-secret")
    now = datetime.now(UTC)
    bot = FeishuBot(
        id=3,
        org_id="org-1",
        name="b",
        provider="",
        app_id="cli_1",
        model_id="m",
        api_key_encrypted=box.encrypt("tg_supersecretkey"),
        api_key_hint="tg_sup",
        app_secret_encrypted=box.encrypt("app-secret"),
        encrypt_key_encrypted=box.encrypt("ek"),
        verification_token_encrypted=None,
        created_at=now,
        updated_at=now,
    )
    shown = to_out(bot).model_dump_json()
    assert "supersecretkey" not in shown and "app-secret" not in shown
    config = orjson.loads(shown)["config"]
    assert config == {
        "appId": "cli_1",
        "modelId": "m",
        "apiKey": "tg_sup****",
        "appSecret": "****",
        "encryptKey": "****",
        "verificationToken": None,
    }


@pytest.fixture
async def feishu() -> httpx.AsyncClient:
    app = create_app()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://feishu")
    await client.post("/_sim/apps", json={"app_id": "cli_1", "app_secret": "s3cret"})
    return client


async def test_the_client_replies_once_per_uuid_and_reuses_its_token(feishu: httpx.AsyncClient) -> None:
    client = FeishuClient(feishu, "http://feishu")
    await client.reply_text("cli_1", "s3cret", "om_1", "first answer", uuid="ev-1")
    await client.reply_text("cli_1", "s3cret", "om_1", "first answer", uuid="ev-1")  # a retry
    await client.reply_text("cli_1", "s3cret", "om_2", "second", uuid="ev-2")
    seen = (await feishu.get("/_sim/replies")).json()
    assert [(r["parent_id"], r["text"]) for r in seen["replies"]] == [
        ("om_1", "first answer"),
        ("om_2", "second"),
    ]
    assert seen["token_requests"] == 1  # cached until it expires


async def test_an_expired_token_is_renewed_and_a_wrong_secret_fails(feishu: httpx.AsyncClient) -> None:
    now = [0.0]
    client = FeishuClient(feishu, "http://feishu", clock=lambda: now[0])
    await client.reply_text("cli_1", "s3cret", "om_1", "a", uuid="ev-1")
    now[0] = 7200.0  # past the token's expiry (less the margin)
    await client.reply_text("cli_1", "s3cret", "om_2", "b", uuid="ev-2")
    assert (await feishu.get("/_sim/replies")).json()["token_requests"] == 2
    with pytest.raises(FeishuError):
        await client.reply_text("cli_1", "wrong", "om_3", "c", uuid="ev-3")


async def test_the_model_caller_returns_an_apology_with_the_gateways_error_code() -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tg_key"
        body = orjson.loads(request.content)
        if body["model"] == "broke":
            return httpx.Response(402, json={"error": {"code": "insufficient_credits", "message": "no"}})
        return httpx.Response(200, json={"choices": [{"message": {"content": " four "}}]})

    http = httpx.AsyncClient(transport=httpx.MockTransport(gateway))
    caller = ModelCaller(http, "http://gateway", max_tokens=32, timeout_s=5)
    ok = await caller.ask("tg_key", "m", "2+2?")
    assert (ok.text, ok.error) == ("four", None)
    refused = await caller.ask("tg_key", "broke", "2+2?")
    assert refused.error == "insufficient_credits" and "insufficient_credits" in refused.text
