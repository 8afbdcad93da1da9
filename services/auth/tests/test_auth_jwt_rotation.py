"""Rotating the JWT signing secret (sessions/tokens.py): tokens name their key in `kid`, tokens of a
previous secret still listed are accepted, unknown or dropped keys are refused, and auth's start
checks every listed secret (config.checked_secrets)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from datetime import timedelta
from typing import Any

import jwt
import pytest

from tollgate.auth.config import AuthSettings, checked_secrets, jwt_keys
from tollgate.auth.keys.service import utcnow
from tollgate.auth.sessions.errors import InvalidToken
from tollgate.auth.sessions.tokens import ALGORITHM, ISSUER, TokenIssuer
from tollgate.common.keyring import Keyring, key_id
from tollgate.common.secret_policy import InsecureSecrets, enforce

OLD = "old-jwt-secret-" + "o" * 40
NEW = "new-jwt-secret-" + "n" * 40
OTHER = "other-jwt-secret-" + "x" * 40


def issuer(current: str, *previous: str) -> TokenIssuer:
    return TokenIssuer(Keyring(current, previous), access_ttl_s=900, refresh_ttl_s=3600)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed_by_hand(header: dict[str, Any], claims: dict[str, Any], secret: str) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def mint(tokens: TokenIssuer, **when: timedelta) -> str:
    now = utcnow() - when.get("ago", timedelta(0))
    return tokens.access_token(user_id="usr_1", org_id="org_1", session_id="ses_1", now=now)


def test_tokens_carry_the_kid_of_the_current_secret() -> None:
    token = mint(issuer(NEW, OLD))
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "JWT", "kid": key_id(NEW)}
    assert issuer(NEW).signing_kid == key_id(NEW)
    jwt.decode(token, NEW, algorithms=[ALGORITHM], issuer=ISSUER)  # signed with the current one


def test_a_token_of_a_previous_secret_still_listed_is_accepted() -> None:
    before = mint(issuer(OLD))
    claims = issuer(NEW, OLD).decode_access(before)
    assert (claims.user_id, claims.session_id) == ("usr_1", "ses_1")
    assert issuer(NEW, OTHER, OLD).decode_access(before).org_id == "org_1"


def test_a_token_of_a_dropped_secret_or_an_unknown_kid_is_refused() -> None:
    before = mint(issuer(OLD))
    with pytest.raises(InvalidToken) as refused:
        issuer(NEW).decode_access(before)
    assert refused.value.code == "invalid_token"
    claims = jwt.decode(before, OLD, algorithms=[ALGORITHM], issuer=ISSUER)
    # signed with a listed secret but naming a kid that is not one of them
    unknown = jwt.encode(claims, NEW, algorithm=ALGORITHM, headers={"kid": "0123456789abcdef"})
    with pytest.raises(InvalidToken):
        issuer(NEW, OLD).decode_access(unknown)
    # the kid of one listed secret, the signature of another: checked with the named key only
    crossed = jwt.encode(claims, OLD, algorithm=ALGORITHM, headers={"kid": key_id(NEW)})
    with pytest.raises(InvalidToken):
        issuer(NEW, OLD).decode_access(crossed)
    good = signed_by_hand({"alg": "HS256", "typ": "JWT", "kid": key_id(NEW)}, claims, NEW)
    assert issuer(NEW).decode_access(good).user_id == "usr_1"  # the hand-made ones are otherwise valid
    for kid in (17, None, "", [key_id(NEW)]):  # not a string naming a listed key (PyJWT won't make these)
        with pytest.raises(InvalidToken):
            issuer(NEW).decode_access(signed_by_hand({"alg": "HS256", "typ": "JWT", "kid": kid}, claims, NEW))


def test_tokens_from_before_key_ids_verify_with_any_listed_secret_only() -> None:
    now = int(utcnow().timestamp())
    claims = {
        "iss": ISSUER, "sub": "usr_1", "org": "org_1", "sid": "ses_1", "typ": "access", "jti": "j" * 32,
        "iat": now, "exp": now + 600,
    }  # fmt: skip
    legacy = jwt.encode(claims, OLD, algorithm=ALGORITHM)  # what auth signed before kids
    assert "kid" not in jwt.get_unverified_header(legacy)
    assert issuer(NEW, OLD).decode_access(legacy).user_id == "usr_1"
    with pytest.raises(InvalidToken):
        issuer(NEW).decode_access(legacy)


def test_an_expired_token_of_a_previous_secret_says_expired() -> None:
    old = mint(issuer(OLD), ago=timedelta(hours=1))
    with pytest.raises(InvalidToken) as refused:
        issuer(NEW, OLD).decode_access(old)
    assert refused.value.code == "token_expired"


def test_settings_read_the_previous_secrets_and_production_checks_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "AUTH_JWT_SECRET",
        "AUTH_JWT_PREVIOUS_SECRETS",
        "AUTH_KEY_PEPPER",
        "AUTH_KEY_PREVIOUS_PEPPERS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = AuthSettings(
        jwt_secret=NEW,
        jwt_previous_secrets=f"{OLD}, short",
        key_pepper="p" * 40,
        key_previous_peppers="q" * 40,
    )
    assert list(jwt_keys(settings)) == [NEW, OLD, "short"]
    with pytest.raises(InsecureSecrets) as refused:
        enforce("production", checked_secrets(settings), logging.getLogger("test"))
    message = str(refused.value)
    assert "AUTH_JWT_PREVIOUS_SECRETS[2] is shorter" in message
    assert "AUTH_JWT_SECRET " not in message and "AUTH_KEY_PREVIOUS_PEPPERS" not in message
    defaults = AuthSettings(key_previous_peppers="tollgate-dev-pepper-change-me")
    with pytest.raises(InsecureSecrets) as refused:
        enforce("production", checked_secrets(defaults), logging.getLogger("test"))
    for variable in ("AUTH_KEY_PEPPER ", "AUTH_JWT_SECRET ", "AUTH_KEY_PREVIOUS_PEPPERS[1] "):
        assert variable + "is the development default" in str(refused.value)
