"""Feishu bots (seed 004's `/admin/bot/feishu/*`, issue 14 item 5) on the real stack, with the Feishu
simulator (tools/feishu-sim) as Feishu: secrets never returned nor stored in plaintext nor logged,
URL verification, a message answered by the bot's model and billed to its key exactly once even
when Feishu pushes the event twice, a badly signed push refused with nothing billed, and a gateway
SIGKILLed during the model call: after the restart the message gets one apology, the model is not
called again and nothing is billed (docs/bots.md, "If the process dies")."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import (
    Account,
    balance_micros,
    expected_cost,
    ledger_usage,
    register_model,
    service_db,
    settled_events,
    wait_until,
)

# the upstream simulator's answer to a plain request (16 completion tokens)
SIM_ANSWER = " ".join(f"tok{i}" for i in range(16))
QUESTION = "what is two plus two"  # 5 prompt tokens at the simulator


@dataclass(frozen=True)
class Bot:
    id: int
    app_id: str
    app_secret: str
    encrypt_key: str
    token: str
    url: str


@pytest.fixture(scope="module")
def feishu(config: StackConfig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=config.url("feishu_sim"), timeout=30) as client:
        yield client


def as_owner(gateway_url: str, account: Account) -> httpx.Client:
    """An account's own key: it owns its (personal) organisation, so it administers its bots."""
    return httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {account.key}"}, timeout=30)


def create_bot(
    owner: httpx.Client, feishu: httpx.Client, gateway_url: str, api_key: str, *, encrypted: bool = True
) -> Bot:
    app_id, app_secret = f"cli_{uuid.uuid4().hex[:16]}", f"sec-{secrets.token_hex(16)}"
    encrypt_key, token = f"ek-{secrets.token_hex(12)}", f"vt-{secrets.token_hex(12)}"
    assert feishu.post("/_sim/apps", json={"app_id": app_id, "app_secret": app_secret}).status_code == 200
    config: dict[str, Any] = {
        "appId": app_id,
        "apiKey": api_key,
        "modelId": "sim-chat",
        "appSecret": app_secret,
        "verificationToken": token,
    }
    if encrypted:
        config["encryptKey"] = encrypt_key
    # the seed's create body: config is a JSON *string*
    resp = owner.post(
        "/admin/bot/feishu/save",
        json={"name": f"bot-{app_id}", "config": json.dumps(config), "provider": "openai-compatible"},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return Bot(
        body["id"],
        app_id,
        app_secret,
        encrypt_key if encrypted else "",
        token,
        gateway_url + body["event_url"],
    )


def deliver(feishu: httpx.Client, bot: Bot, **extra: Any) -> dict[str, Any]:
    body = {
        "url": bot.url,
        "app_id": bot.app_id,
        "text": QUESTION,
        "verification_token": bot.token,
        "encrypt_key": bot.encrypt_key,
        **extra,
    }
    resp = feishu.post("/_sim/deliver/message", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def replies(feishu: httpx.Client, bot: Bot) -> list[dict[str, Any]]:
    return list(feishu.get("/_sim/replies", params={"app_id": bot.app_id}).json()["replies"])


def event_row(config: StackConfig, bot: Bot, event_id: str) -> tuple[Any, ...] | None:
    with service_db(config, "gateway") as conn:
        return conn.execute(
            "SELECT status, prompt_encrypted, answer_encrypted FROM feishu_bot_events"
            " WHERE bot_id = %s AND event_id = %s",
            (bot.id, event_id),
        ).fetchone()


def test_bots_are_saved_listed_and_deleted_without_ever_returning_a_secret(
    new_account: Callable[..., Account], feishu: httpx.Client, gateway_url: str, config: StackConfig
) -> None:
    account, stranger = new_account(), new_account()
    with as_owner(gateway_url, account) as owner, as_owner(gateway_url, stranger) as other:
        bot = create_bot(owner, feishu, gateway_url, account.key)
        secrets_of_bot = [account.key, bot.app_secret, bot.encrypt_key, bot.token]

        listed = owner.get("/admin/bot/feishu/list", params={"q": bot.app_id, "limit": 10})
        assert listed.status_code == 200, listed.text
        assert listed.json()["total"] == 1
        shown = listed.json()["data"][0]
        assert shown["config"]["appId"] == bot.app_id and shown["config"]["modelId"] == "sim-chat"
        assert shown["config"]["appSecret"] == "****" and shown["config"]["encryptKey"] == "****"
        assert shown["config"]["apiKey"].endswith("****")
        assert shown["event_url"] == f"/bot/feishu/{bot.id}/events"

        # the seed's update body: config fields at the top level, the bot named by its appId
        new_secret = f"sec-{secrets.token_hex(16)}"
        updated = owner.post("/admin/bot/feishu/save", json={"appId": bot.app_id, "appSecret": new_secret})
        assert updated.status_code == 200, updated.text
        assert updated.json()["id"] == bot.id
        renamed = owner.post("/admin/bot/feishu/save", json={"id": bot.id, "name": "renamed"})
        assert renamed.json()["name"] == "renamed" and renamed.json()["config"]["appId"] == bot.app_id
        secrets_of_bot.append(new_secret)
        for answer in (listed, updated, renamed):
            assert not any(s in answer.text for s in secrets_of_bot)

        # another organisation's owner sees nothing, changes nothing
        assert other.get("/admin/bot/feishu/list").json()["total"] == 0
        assert other.post("/admin/bot/feishu/delete", json={"id": bot.id}).status_code == 404
        assert other.post("/admin/bot/feishu/save", json={"id": bot.id, "name": "x"}).status_code == 404
        # nor may a bot be billed to another organisation's key
        refused = other.post(
            "/admin/bot/feishu/save",
            json={
                "name": "b",
                "config": {"appId": "cli_x", "apiKey": account.key, "modelId": "sim-chat", "appSecret": "s"},
            },
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_bot_key"
        assert not any(s in refused.text for s in secrets_of_bot)

        # at rest: ciphertexts only; in the gateway's log: nothing
        with service_db(config, "gateway") as conn:
            row = conn.execute(
                "SELECT row_to_json(b)::text FROM feishu_bots b WHERE id = %s", (bot.id,)
            ).fetchone()
        assert row is not None and not any(s in row[0] for s in secrets_of_bot)
        log = (config.logs_dir / "gateway.log").read_text(errors="replace")
        assert not any(s in log for s in secrets_of_bot[1:])  # (the account key is the caller's own header)

        assert owner.post("/admin/bot/feishu/delete", json={"id": bot.id}).json() == {
            "id": bot.id,
            "deleted": True,
        }
        assert owner.get("/admin/bot/feishu/list").json()["total"] == 0
        assert owner.post("/admin/bot/feishu/delete", json={"id": bot.id}).status_code == 404
        # a deleted bot's endpoint is gone too
        assert deliver(feishu, bot)["status"] == 404


def test_url_verification_plain_and_encrypted(
    new_account: Callable[..., Account], feishu: httpx.Client, gateway_url: str
) -> None:
    account = new_account()
    with as_owner(gateway_url, account) as owner:
        for encrypted in (True, False):
            bot = create_bot(owner, feishu, gateway_url, account.key, encrypted=encrypted)
            body = {"url": bot.url, "verification_token": bot.token, "encrypt_key": bot.encrypt_key}
            answer = feishu.post("/_sim/deliver/url_verification", json=body).json()
            assert answer["status"] == 200, answer
            assert answer["body"] == {"challenge": answer["payload"]["challenge"]}
            wrong = feishu.post("/_sim/deliver/url_verification", json={**body, "verification_token": "nope"})
            assert wrong.json()["status"] == 401


def test_a_message_is_answered_by_the_model_and_billed_once_though_pushed_twice(
    new_account: Callable[..., Account], feishu: httpx.Client, gateway_url: str, config: StackConfig
) -> None:
    account = new_account(credits=1)
    with as_owner(gateway_url, account) as owner:
        bot = create_bot(owner, feishu, gateway_url, account.key)
    before = balance_micros(gateway_url, account.key)

    first = deliver(feishu, bot)
    assert first["status"] == 200 and first["body"]["msg"] == "accepted", first
    event = first["payload"]
    # Feishu pushes the same event again (a retry: new signature, same event id)
    again = feishu.post(
        "/_sim/deliver/event", json={"url": bot.url, "event": event, "encrypt_key": bot.encrypt_key}
    ).json()
    assert again["status"] == 200 and again["body"]["msg"] == "duplicate", again

    message_id = event["event"]["message"]["message_id"]
    sent = wait_until(lambda: replies(feishu, bot), timeout=60, what="the bot's reply")
    assert [(r["parent_id"], r["text"]) for r in sent] == [(message_id, SIM_ANSWER)]
    assert sent[0]["uuid"] == event["header"]["event_id"]  # Feishu de-duplicates the reply on it

    cost = expected_cost(5, 16)
    wait_until(lambda: ledger_usage(config, account.org_id) == (1, cost), what="the answer's charge")
    wait_until(lambda: balance_micros(gateway_url, account.key) == before - cost, what="the balance")
    row = wait_until(lambda: event_row(config, bot, event["header"]["event_id"]), what="the event row")
    wait_until(
        lambda: (event_row(config, bot, event["header"]["event_id"]) or ("",))[0] == "replied",
        what="the event replied",
    )
    row = event_row(config, bot, event["header"]["event_id"])
    assert row == ("replied", None, None)  # neither the question nor the answer is kept

    # once everything settled, a third push is still a duplicate: no second reply, no second charge
    third = feishu.post(
        "/_sim/deliver/event", json={"url": bot.url, "event": event, "encrypt_key": bot.encrypt_key}
    ).json()
    assert third["body"]["msg"] == "duplicate"
    assert len(replies(feishu, bot)) == 1
    assert ledger_usage(config, account.org_id) == (1, cost)


def test_a_badly_signed_push_is_refused_and_nothing_is_billed(
    new_account: Callable[..., Account], feishu: httpx.Client, gateway_url: str, config: StackConfig
) -> None:
    account = new_account(credits=1)
    with as_owner(gateway_url, account) as owner:
        bot = create_bot(owner, feishu, gateway_url, account.key)
    forged = deliver(feishu, bot, bad_signature=True)
    assert forged["status"] == 401, forged
    unsigned = deliver(feishu, bot, unsigned=True)
    assert unsigned["status"] == 401, unsigned
    for refused in (forged, unsigned):
        assert event_row(config, bot, refused["payload"]["header"]["event_id"]) is None

    # a genuine push afterwards: once it is answered and charged, the ledger holds its charge alone
    genuine = deliver(feishu, bot)
    assert genuine["status"] == 200
    wait_until(lambda: replies(feishu, bot), what="the genuine message's reply")
    cost = expected_cost(5, 16)
    wait_until(lambda: ledger_usage(config, account.org_id) == (1, cost), what="one charge")
    parents = {r["parent_id"] for r in replies(feishu, bot)}
    assert parents == {genuine["payload"]["event"]["message"]["message_id"]}


# the worker's apology for a call a dead process left in flight (bots/worker.py INTERRUPTED)
INTERRUPTED = "Sorry, I was interrupted while answering: please ask again."


def sim_calls(sim_url: str, model: str) -> int:
    return int(httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()["by_model"].get(model, 0))


def test_a_gateway_killed_during_the_model_call_answers_once_after_restart_and_bills_nothing(
    stack: Stack,
    admin: httpx.Client,
    new_account: Callable[..., Account],
    feishu: httpx.Client,
    gateway_url: str,
    sim_url: str,
    config: StackConfig,
) -> None:
    # a model of its own whose upstream sleeps 30 s ("timeout" in its name): the call is in flight
    # long enough to kill the gateway during it, and the simulator counts calls by this name alone
    model = f"feishu-crash-timeout-{uuid.uuid4().hex[:6]}"
    register_model(admin, model, model, sim_url)
    account = new_account(credits=1)
    with as_owner(gateway_url, account) as owner:
        bot = create_bot(owner, feishu, gateway_url, account.key)
        saved = owner.post("/admin/bot/feishu/save", json={"id": bot.id, "modelId": model})
        assert saved.status_code == 200, saved.text

    pushed = deliver(feishu, bot)
    assert pushed["status"] == 200 and pushed["body"]["msg"] == "accepted", pushed
    event_id = pushed["payload"]["header"]["event_id"]
    message_id = pushed["payload"]["event"]["message"]["message_id"]
    wait_until(lambda: (event_row(config, bot, event_id) or ("",))[0] == "calling", what="the call started")
    wait_until(lambda: sim_calls(sim_url, model) == 1, what="the model call at the upstream")

    stack.stop_service("gateway", kill=True)  # SIGKILL: the worker and the call die together
    try:
        # restarted with a short call deadline so the dead call is given up on within seconds
        # (upstream timeout 2 s + 10 s + grace 1 s after the claim) instead of 100 s
        stack.start_service(
            "gateway", extra_env={"GATEWAY_UPSTREAM_TIMEOUT_S": "2", "GATEWAY_FEISHU_CALL_GRACE_S": "1"}
        )
        sent = wait_until(lambda: replies(feishu, bot), timeout=90, what="the apology")
        wait_until(
            lambda: (event_row(config, bot, event_id) or ("",))[0] == "replied", what="the event replied"
        )
        assert [(r["parent_id"], r["text"], r["uuid"]) for r in sent] == [(message_id, INTERRUPTED, event_id)]
        assert event_row(config, bot, event_id) == ("replied", None, None)

        # a push of the same event after the restart is still a duplicate: nothing answered again
        again = feishu.post(
            "/_sim/deliver/event",
            json={"url": bot.url, "event": pushed["payload"], "encrypt_key": bot.encrypt_key},
        ).json()
        assert again["body"]["msg"] == "duplicate", again
    finally:
        # the stack as every other test expects it: the gateway with its usual settings
        stack.stop_service("gateway")
        stack.start_service("gateway")

    # the model was called once, before the crash, and never again; the cut-off call never reached
    # an answer, so no usage was recorded or charged for it (its hold is released by billing)
    assert sim_calls(sim_url, model) == 1
    assert len(replies(feishu, bot)) == 1
    assert ledger_usage(config, account.org_id) == (0, 0)
    assert settled_events(config, account.org_id) == 0
