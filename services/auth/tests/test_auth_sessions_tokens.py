"""Access tokens: what is signed is what is accepted, and nothing else."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from tollgate.auth.keys.service import utcnow
from tollgate.auth.sessions.errors import InvalidToken
from tollgate.auth.sessions.tokens import (
    REFRESH_PREFIX,
    TokenIssuer,
    hash_refresh_token,
    looks_like_jwt,
    new_refresh_token,
)

SECRET = "unit-test-secret-0123456789abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def issuer() -> TokenIssuer:
    return TokenIssuer(SECRET, access_ttl_s=900, refresh_ttl_s=3600)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _mint(issuer: TokenIssuer) -> str:
    return issuer.access_token(user_id="usr_1", org_id="org_1", session_id="ses_1", now=utcnow())


def test_round_trip_carries_the_claims(issuer: TokenIssuer) -> None:
    token = _mint(issuer)
    claims = issuer.decode_access(token)
    assert (claims.user_id, claims.org_id, claims.session_id) == ("usr_1", "org_1", "ses_1")
    raw = jwt.decode(token, SECRET, algorithms=["HS256"], issuer="tollgate-auth")
    assert raw["typ"] == "access" and raw["exp"] - raw["iat"] == 900 and len(raw["jti"]) == 32
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert _mint(issuer) != token  # a fresh jti every time


def test_changed_claims_break_the_signature(issuer: TokenIssuer) -> None:
    header, payload, signature = _mint(issuer).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "usr_someone_else"
    with pytest.raises(InvalidToken):
        issuer.decode_access(f"{header}.{_b64(claims)}.{signature}")


def test_alg_none_is_refused(issuer: TokenIssuer) -> None:
    now = int(utcnow().timestamp())
    claims = {"iss": "tollgate-auth", "sub": "u", "org": "o", "sid": "s", "typ": "access", "jti": "j"}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({**claims, 'iat': now, 'exp': now + 60})}."
    with pytest.raises(InvalidToken):
        issuer.decode_access(unsigned)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_algorithms_with_the_right_secret_are_refused(issuer: TokenIssuer, algorithm: str) -> None:
    now = int(utcnow().timestamp())
    claims = {"iss": "tollgate-auth", "sub": "u", "org": "o", "sid": "s", "typ": "access", "jti": "j"}
    token = jwt.encode({**claims, "iat": now, "exp": now + 60}, SECRET, algorithm=algorithm)
    with pytest.raises(InvalidToken):
        issuer.decode_access(token)


def test_a_token_signed_with_another_key_is_refused(issuer: TokenIssuer) -> None:
    other = TokenIssuer("another-secret-0123456789abcdef0123456789abcdef", access_ttl_s=900, refresh_ttl_s=60)
    with pytest.raises(InvalidToken):
        issuer.decode_access(_mint(other))


def test_an_expired_token_is_refused(issuer: TokenIssuer) -> None:
    old = issuer.access_token(user_id="u", org_id="o", session_id="s", now=utcnow() - timedelta(hours=1))
    with pytest.raises(InvalidToken) as refused:
        issuer.decode_access(old)
    assert refused.value.code == "token_expired"


@pytest.mark.parametrize(
    "change",
    [{"typ": "refresh"}, {"sid": None}, {"org": None}, {"iss": "someone-else"}, {"sub": 42}],
)
def test_wrong_or_missing_claims_are_refused(issuer: TokenIssuer, change: dict[str, object]) -> None:
    now = int(utcnow().timestamp())
    claims: dict[str, object] = {
        "iss": "tollgate-auth", "sub": "u", "org": "o", "sid": "s", "typ": "access", "jti": "j",
        "iat": now, "exp": now + 60,
    }  # fmt: skip
    claims.update(change)
    token = jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken):
        issuer.decode_access(token)


def test_garbage_is_refused(issuer: TokenIssuer) -> None:
    for junk in ["", "a.b.c", "not-a-token", _mint(issuer)[:-4]]:
        with pytest.raises(InvalidToken):
            issuer.decode_access(junk)


def test_refresh_tokens_are_random_and_stored_as_sha256() -> None:
    first, second = new_refresh_token(), new_refresh_token()
    assert first != second and first.startswith(REFRESH_PREFIX) and len(first) > 40
    digest = hash_refresh_token(first)
    assert len(digest) == 64 and first not in digest and digest == hash_refresh_token(first)
    assert not looks_like_jwt(first) and not looks_like_jwt("tg_abc")
    assert looks_like_jwt("a.b.c")
