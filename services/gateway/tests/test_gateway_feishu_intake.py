"""A push to a bot's event endpoint (bots/intake.py): who may push, challenges, and de-duplication
(the recorder stands for the database's unique key on (bot, event id))."""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson
import pytest

from tollgate.common.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from tollgate.feishu_sim.app import message_event
from tollgate.feishu_sim.crypto import encrypt, signature
from tollgate.gateway.bots.intake import ACCEPTED, CHALLENGE, DUPLICATE, IGNORED, EventIntake
from tollgate.gateway.bots.models import FeishuBot
from tollgate.gateway.catalog.secrets import SecretBox

BOX = SecretBox("unit-test-secret")
KEY, TOKEN = "the-encrypt-key", "the-verification-token"


def bot(encrypt_key: str | None = KEY, token: str | None = TOKEN) -> FeishuBot:
    return FeishuBot(
        id=7,
        org_id="org-1",
        app_id="cli_1",
        model_id="sim-chat",
        encrypt_key_encrypted=BOX.encrypt(encrypt_key) if encrypt_key else None,
        verification_token_encrypted=BOX.encrypt(token) if token else None,
    )


class Bots:
    def __init__(self, found: FeishuBot | None) -> None:
        self.found = found

    async def get_live(self, bot_id: int, org_id: str | None = None) -> FeishuBot | None:
        return self.found if self.found is not None and self.found.id == bot_id else None


class Events:
    """Unique on (bot, event id), like feishu_bot_events."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str], tuple[str, str]] = {}

    async def record(self, bot_id: int, event_id: str, message_id: str, prompt_encrypted: str) -> int | None:
        if (bot_id, event_id) in self.rows:
            return None
        self.rows[(bot_id, event_id)] = (message_id, prompt_encrypted)
        return len(self.rows)


def push(
    payload: dict[str, Any],
    encrypt_key: str | None = KEY,
    *,
    sign_with: str | None = None,
    signed: bool = True,
) -> tuple[bytes, dict[str, str]]:
    plain = orjson.dumps(payload).decode()
    raw = orjson.dumps({"encrypt": encrypt(plain, encrypt_key)}) if encrypt_key else plain.encode()
    headers: dict[str, str] = {}
    if signed and (sign_with or encrypt_key):
        ts, nonce = str(int(time.time())), secrets.token_hex(4)
        headers = {
            "x-lark-request-timestamp": ts,
            "x-lark-request-nonce": nonce,
            "x-lark-signature": signature(ts, nonce, sign_with or encrypt_key or "", raw),
        }
    return raw, headers


def message(token: str = TOKEN, **extra: Any) -> dict[str, Any]:
    return message_event({"app_id": "cli_1", "text": "hello bot", "verification_token": token, **extra})


INTAKE = EventIntake(BOX, max_age_s=3600)


async def test_url_verification_plain_and_encrypted() -> None:
    challenge = {"challenge": "c-123", "token": TOKEN, "type": "url_verification"}
    for the_bot, key in ((bot(encrypt_key=None), None), (bot(), KEY)):
        raw, headers = push(challenge, key, signed=False)  # Feishu need not sign the challenge
        got = await INTAKE.receive(Bots(the_bot), Events(), 7, raw, headers)
        assert (got.outcome, got.answer) == (CHALLENGE, {"challenge": "c-123"})


async def test_a_challenge_with_the_wrong_token_is_refused() -> None:
    raw, headers = push({"challenge": "c", "token": "nope", "type": "url_verification"}, None)
    with pytest.raises(Unauthenticated):
        await INTAKE.receive(Bots(bot(encrypt_key=None)), Events(), 7, raw, headers)


async def test_the_same_event_twice_is_recorded_once() -> None:
    events = Events()
    payload = message(event_id="ev-dup", message_id="om_dup")
    outcomes = []
    for _ in range(2):  # Feishu pushes again: a new signature, the same event id
        raw, headers = push(payload)
        outcomes.append((await INTAKE.receive(Bots(bot()), events, 7, raw, headers)).outcome)
    assert outcomes == [ACCEPTED, DUPLICATE]
    assert list(events.rows) == [(7, "ev-dup")]
    message_id, prompt = events.rows[(7, "ev-dup")]
    assert message_id == "om_dup"
    assert BOX.decrypt(prompt) == "hello bot"  # kept encrypted, never in plaintext


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"sign_with": "another-key"}, Unauthenticated),  # bad signature
        ({"signed": False}, Unauthenticated),  # an event must be signed when the bot has a key
    ],
)
async def test_unsigned_or_badly_signed_events_are_refused(kwargs: dict[str, Any], error: type) -> None:
    events = Events()
    raw, headers = push(message(), **kwargs)
    with pytest.raises(error):
        await INTAKE.receive(Bots(bot()), events, 7, raw, headers)
    assert events.rows == {}


async def test_a_stale_signed_timestamp_is_refused() -> None:
    raw, _ = push(message())
    ts = str(int(time.time()) - 7200)
    headers = {
        "x-lark-request-timestamp": ts,
        "x-lark-request-nonce": "n",
        "x-lark-signature": signature(ts, "n", KEY, raw),
    }
    with pytest.raises(Unauthenticated):
        await INTAKE.receive(Bots(bot()), Events(), 7, raw, headers)


async def test_plain_pushes_need_the_token_and_encrypted_bots_refuse_plain_ones() -> None:
    plain_bot = bot(encrypt_key=None)
    raw, headers = push(message(token="wrong"), None)
    with pytest.raises(Unauthenticated):
        await INTAKE.receive(Bots(plain_bot), Events(), 7, raw, headers)
    raw, headers = push(message(), None)
    assert (await INTAKE.receive(Bots(plain_bot), Events(), 7, raw, headers)).outcome == ACCEPTED
    raw, headers = push(message(), None, sign_with=KEY)  # signed, but not encrypted
    with pytest.raises(InvalidRequest):
        await INTAKE.receive(Bots(bot()), Events(), 7, raw, headers)


async def test_a_bot_that_cannot_verify_pushes_refuses_them() -> None:
    raw, headers = push(message(), None)
    with pytest.raises(Forbidden):
        await INTAKE.receive(Bots(bot(encrypt_key=None, token=None)), Events(), 7, raw, headers)


async def test_unknown_bot_other_app_and_other_events() -> None:
    raw, headers = push(message())
    with pytest.raises(NotFound):
        await INTAKE.receive(Bots(bot()), Events(), 8, raw, headers)
    other_app = message()
    other_app["header"]["app_id"] = "cli_other"
    raw, headers = push(other_app)
    with pytest.raises(Forbidden):
        await INTAKE.receive(Bots(bot()), Events(), 7, raw, headers)
    reaction = message()
    reaction["header"]["event_type"] = "im.message.reaction.created_v1"
    raw, headers = push(reaction)
    events = Events()
    assert (await INTAKE.receive(Bots(bot()), events, 7, raw, headers)).outcome == IGNORED
    assert events.rows == {}
