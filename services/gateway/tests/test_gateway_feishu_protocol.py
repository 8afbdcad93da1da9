"""Feishu's push protocol (bots/feishu_protocol.py): signature, decryption, challenge and event shapes,
checked against the Feishu simulator's independent encoder (tools/feishu-sim)."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest

from tollgate.feishu_sim.app import message_event
from tollgate.feishu_sim.crypto import encrypt, signature
from tollgate.gateway.bots import feishu_protocol as fp

KEY = "fixture-encrypt-key"


def test_signature_is_sha256_hex_of_timestamp_nonce_key_and_raw_body() -> None:
    body = b'{"encrypt":"abc"}'
    wanted = hashlib.sha256(b"1700000000" + b"n0nce" + KEY.encode() + body).hexdigest()
    assert fp.expected_signature("1700000000", "n0nce", KEY, body) == wanted
    assert fp.signature_valid("1700000000", "n0nce", KEY, body, wanted)
    assert fp.signature_valid("1700000000", "n0nce", KEY, body, signature("1700000000", "n0nce", KEY, body))


@pytest.mark.parametrize(
    ("timestamp", "nonce", "key", "body"),
    [
        ("1700000001", "n0nce", KEY, b'{"encrypt":"abc"}'),  # another timestamp
        ("1700000000", "other", KEY, b'{"encrypt":"abc"}'),  # another nonce
        ("1700000000", "n0nce", "another-key", b'{"encrypt":"abc"}'),  # another key
        ("1700000000", "n0nce", KEY, b'{"encrypt":"abd"}'),  # one byte of the body changed
    ],
)
def test_a_signature_over_anything_else_is_refused(timestamp: str, nonce: str, key: str, body: bytes) -> None:
    good = signature("1700000000", "n0nce", KEY, b'{"encrypt":"abc"}')
    assert not fp.signature_valid(timestamp, nonce, key, body, good)


def test_decrypts_what_feishu_encrypts() -> None:
    plain = '{"challenge":"ajls384kdjx98XX","token":"xxxxxx","type":"url_verification"}'
    assert fp.decrypt(encrypt(plain, KEY), KEY) == plain
    long_text = "你好 " * 500  # multi-block, non-ASCII
    assert fp.decrypt(encrypt(long_text, KEY), KEY) == long_text


@pytest.mark.parametrize(
    "encrypted",
    [
        "not base64 !!",
        base64.b64encode(b"short").decode(),
        base64.b64encode(b"x" * 40).decode(),  # not a multiple of the block size
    ],
)
def test_malformed_ciphertexts_are_protocol_errors(encrypted: str) -> None:
    with pytest.raises(fp.ProtocolError):
        fp.decrypt(encrypted, KEY)


def test_the_wrong_key_does_not_decrypt() -> None:
    with pytest.raises(fp.ProtocolError):
        fp.parse_json(fp.decrypt(encrypt('{"a": 1}', KEY), "another-key"))


def test_challenge_and_its_token() -> None:
    challenge = fp.as_challenge({"challenge": "c-1", "token": "tok", "type": "url_verification"})
    assert challenge == fp.Challenge("c-1", "tok")
    assert fp.as_challenge({"schema": "2.0"}) is None
    with pytest.raises(fp.ProtocolError):
        fp.as_challenge({"type": "url_verification"})
    assert fp.token_valid("tok", "tok")
    assert not fp.token_valid("tok2", "tok")
    assert not fp.token_valid(None, "tok")


def test_a_text_message_event_with_mentions() -> None:
    event = message_event(
        {"app_id": "cli_1", "text": "@_user_1  what is   2+2?", "event_id": "ev-1", "message_id": "om_1"}
    )
    header = fp.event_header(event)
    assert (header.event_id, header.event_type, header.app_id) == ("ev-1", fp.MESSAGE_RECEIVED, "cli_1")
    message = fp.text_message(event)
    assert message is not None
    assert (message.message_id, message.text, message.chat_type) == ("om_1", "what is 2+2?", "p2p")


@pytest.mark.parametrize(
    "changes",
    [
        {"message_type": "image"},  # only text is answered
        {"sender_type": "app"},  # never a bot's own (or another bot's) message: no loops
        {"text": "@_user_1"},  # nothing left once the mention is gone
    ],
)
def test_messages_a_bot_does_not_answer(changes: dict[str, str]) -> None:
    event = message_event({"app_id": "cli_1", "text": "hello", **changes})
    assert fp.text_message(event) is None


def test_only_schema_2_events() -> None:
    with pytest.raises(fp.ProtocolError):
        fp.event_header({"uuid": "x", "event": {}, "type": "event_callback"})  # schema 1.0
    with pytest.raises(fp.ProtocolError):
        fp.event_header({"schema": "2.0", "header": {}})
    with pytest.raises(fp.ProtocolError):
        fp.parse_json(b"[1, 2]")
    assert fp.parse_json(orjson.dumps({"a": 1})) == {"a": 1}
