"""A Feishu push to a bot's request URL, checked and recorded (events.py's rules). Never commits:
the route commits, then wakes the worker; the model call happens there, after Feishu got its 200.

Who may push: a bot with an Encrypt Key takes only encrypted bodies, and its events only when
signed with it (X-Lark-Signature over timestamp + nonce + key + raw body); a bot with a
Verification Token takes only pushes carrying it; a bot with neither cannot tell Feishu from anyone
else and refuses every push. A signed timestamp older than the event memory is refused, so a
replayed push is always one whose event id is still remembered (and so ignored)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from tollgate.common.errors import Forbidden, InvalidRequest, NotFound, Unauthenticated
from tollgate.common.secretbox import SecretBox
from tollgate.gateway.bots import feishu_protocol as fp
from tollgate.gateway.bots.models import FeishuBot

log = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, IGNORED, CHALLENGE = "accepted", "duplicate", "ignored", "challenge"
MAX_BODY_BYTES = 256 * 1024


class BotLookup(Protocol):
    async def get_live(self, bot_id: int, org_id: str | None = None) -> FeishuBot | None: ...


class EventRecorder(Protocol):
    async def record(self, bot_id: int, event_id: str, message_id: str, prompt_encrypted: str) -> int | None:
        """The new event's row id, or None when the bot already has this event id."""
        ...


@dataclass(frozen=True)
class Pushed:
    outcome: str
    answer: dict[str, Any]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if value else None


class EventIntake:
    def __init__(self, box: SecretBox, max_age_s: float, clock: Callable[[], float] = time.time) -> None:
        self.box = box
        self.max_age_s = max_age_s
        self.clock = clock

    def _open(self, ciphertext: str | None) -> str | None:
        return self.box.decrypt(ciphertext) if ciphertext else None

    def _check_signature(self, headers: Mapping[str, str], encrypt_key: str, raw: bytes) -> bool:
        """True when signed and the signature holds; False when unsigned; raises when signed wrongly."""
        timestamp = _header(headers, "x-lark-request-timestamp")
        nonce = _header(headers, "x-lark-request-nonce")
        signature = _header(headers, "x-lark-signature")
        if not (timestamp and nonce and signature):
            return False
        if not fp.signature_valid(timestamp, nonce, encrypt_key, raw, signature):
            raise Unauthenticated("The push's X-Lark-Signature does not match.", code="bad_signature")
        try:
            age = abs(self.clock() - float(timestamp))
        except ValueError as exc:
            raise InvalidRequest("X-Lark-Request-Timestamp is not a number.", code="bad_timestamp") from exc
        if age > self.max_age_s:
            raise Unauthenticated("The push's timestamp is too old.", code="stale_push")
        return True

    async def receive(
        self, bots: BotLookup, events: EventRecorder, bot_id: int, raw: bytes, headers: Mapping[str, str]
    ) -> Pushed:
        if len(raw) > MAX_BODY_BYTES:
            raise InvalidRequest("The push is too large.", code="push_too_large")
        bot = await bots.get_live(bot_id)
        if bot is None:
            raise NotFound(f"Bot {bot_id} does not exist.", code="bot_not_found")
        encrypt_key = self._open(bot.encrypt_key_encrypted)
        token = self._open(bot.verification_token_encrypted)
        if not encrypt_key and not token:
            raise Forbidden(
                "This bot has neither an encryptKey nor a verificationToken: set one to receive events.",
                code="bot_not_verifiable",
            )
        try:
            signed = self._check_signature(headers, encrypt_key, raw) if encrypt_key else False
            payload = fp.parse_json(raw)
            if "encrypt" in payload:
                if not encrypt_key:
                    raise fp.ProtocolError("an encrypted push for a bot without an encryptKey")
                payload = fp.parse_json(fp.decrypt(str(payload["encrypt"]), encrypt_key))
            elif encrypt_key:
                raise fp.ProtocolError("this bot has an encryptKey: pushes must be encrypted")
            challenge = fp.as_challenge(payload)
            if challenge is not None:
                if token and not fp.token_valid(challenge.token, token):
                    raise Unauthenticated("The challenge's token does not match.", code="bad_token")
                return Pushed(CHALLENGE, {"challenge": challenge.challenge})
            header = fp.event_header(payload)
            if encrypt_key and not signed:
                raise Unauthenticated("Events must be signed (X-Lark-Signature).", code="unsigned_push")
            if token and not fp.token_valid(header.token, token):
                raise Unauthenticated("The event's token does not match.", code="bad_token")
            if header.app_id and header.app_id != bot.app_id:
                raise Forbidden("The event belongs to another Feishu app.", code="wrong_app")
            if header.event_type != fp.MESSAGE_RECEIVED:
                return Pushed(IGNORED, {"code": 0, "msg": "ignored"})
            message = fp.text_message(payload)
        except fp.ProtocolError as exc:
            raise InvalidRequest(f"Not a Feishu push: {exc}.", code="bad_push") from exc
        if message is None:
            return Pushed(IGNORED, {"code": 0, "msg": "ignored"})
        row = await events.record(bot.id, header.event_id, message.message_id, self.box.encrypt(message.text))
        outcome = DUPLICATE if row is None else ACCEPTED
        log.info("feishu event", extra={"bot_id": bot.id, "event_id": header.event_id, "outcome": outcome})
        return Pushed(outcome, {"code": 0, "msg": outcome})
