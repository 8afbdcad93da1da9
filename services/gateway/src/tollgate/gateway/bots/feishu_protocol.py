"""Feishu's event-subscription protocol, pure (no I/O): signature, decryption, and the shapes of the
URL verification challenge and of an `im.message.receive_v1` event (event schema 2.0).

- Signature (only with an Encrypt Key): `X-Lark-Signature` = hex(sha256(X-Lark-Request-Timestamp +
  X-Lark-Request-Nonce + Encrypt Key + raw body)). Feishu does not promise to sign the URL
  verification challenge, only events.
- Encrypted body: `{"encrypt": base64(iv + AES-256-CBC(PKCS#7 plaintext))}`, key = sha256(Encrypt
  Key), iv = the first 16 bytes.
- Verification Token: `token` in the challenge, `header.token` in a 2.0 event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MESSAGE_RECEIVED = "im.message.receive_v1"
_MENTION = re.compile(r"@_user_\d+")


class ProtocolError(ValueError):
    """The request is not a well-formed (or not an authentic) Feishu push."""


def expected_signature(timestamp: str, nonce: str, encrypt_key: str, raw_body: bytes) -> str:
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + raw_body).hexdigest()


def signature_valid(timestamp: str, nonce: str, encrypt_key: str, raw_body: bytes, signature: str) -> bool:
    wanted = expected_signature(timestamp, nonce, encrypt_key, raw_body)
    return hmac.compare_digest(wanted, signature.strip().lower())


def decrypt(encrypted: str, encrypt_key: str) -> str:
    try:
        data = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("encrypt is not base64") from exc
    if len(data) < 32 or len(data) % 16:
        raise ProtocolError("encrypt has the wrong length")
    key = hashlib.sha256(encrypt_key.encode()).digest()
    decryptor = Cipher(algorithms.AES(key), modes.CBC(data[:16])).decryptor()
    padded = decryptor.update(data[16:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("encrypt does not decrypt with this bot's Encrypt Key") from exc


def parse_json(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("the body is not a JSON object")
    return data


def token_valid(given: Any, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class Challenge:
    challenge: str
    token: str


@dataclass(frozen=True)
class EventHeader:
    event_id: str
    event_type: str
    token: str
    app_id: str
    create_time_ms: int


@dataclass(frozen=True)
class TextMessage:
    message_id: str
    chat_id: str
    chat_type: str
    text: str


def as_challenge(payload: dict[str, Any]) -> Challenge | None:
    if payload.get("type") != "url_verification":
        return None
    challenge = payload.get("challenge")
    if not isinstance(challenge, str) or not challenge:
        raise ProtocolError("url_verification without a challenge")
    return Challenge(challenge=challenge, token=str(payload.get("token") or ""))


def event_header(payload: dict[str, Any]) -> EventHeader:
    header = payload.get("header")
    if payload.get("schema") != "2.0" or not isinstance(header, dict):
        raise ProtocolError("only event schema 2.0 is supported")
    event_id = header.get("event_id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        raise ProtocolError("header.event_id is missing")
    try:
        created = int(header.get("create_time") or 0)
    except (TypeError, ValueError):
        created = 0
    return EventHeader(
        event_id=event_id,
        event_type=str(header.get("event_type") or ""),
        token=str(header.get("token") or ""),
        app_id=str(header.get("app_id") or ""),
        create_time_ms=created,
    )


def text_message(payload: dict[str, Any]) -> TextMessage | None:
    """The user's text of an im.message.receive_v1 event, mentions (`@_user_1`) removed; None for
    what a bot does not answer: another message type, a message sent by an app (bot loops), or
    nothing left to say."""
    event = payload.get("event")
    if not isinstance(event, dict):
        raise ProtocolError("event is missing")
    sender, message = event.get("sender"), event.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("message_id"), str):
        raise ProtocolError("event.message is missing")
    if isinstance(sender, dict) and sender.get("sender_type") == "app":
        return None
    if message.get("message_type") != "text":
        return None
    try:
        content = orjson.loads(str(message.get("content") or ""))
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("event.message.content is not JSON") from exc
    text = content.get("text") if isinstance(content, dict) else None
    if not isinstance(text, str):
        return None
    text = " ".join(_MENTION.sub(" ", text).split())
    if not text:
        return None
    return TextMessage(
        message_id=message["message_id"],
        chat_id=str(message.get("chat_id") or ""),
        chat_type=str(message.get("chat_type") or ""),
        text=text,
    )
