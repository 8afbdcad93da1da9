"""Access tokens (HS256 JWTs, short-lived) and refresh tokens (opaque, stored as sha256)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from tollgate.auth.sessions.errors import InvalidToken

ALGORITHM = "HS256"
ISSUER = "tollgate-auth"
ACCESS = "access"
REFRESH_PREFIX = "tgr_"
_REQUIRED = ["exp", "iat", "sub", "jti", "typ", "org", "sid", "iss"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    org_id: str
    session_id: str
    token_id: str
    expires_at_unix: int = 0  # the `exp` claim: callers caching what the token stands for stop there


def looks_like_jwt(credential: str) -> bool:
    """API keys (`tg_...`) never contain dots; a JWT is three dot-separated parts."""
    return credential.count(".") == 2


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


class TokenIssuer:
    def __init__(self, secret: str, *, access_ttl_s: int, refresh_ttl_s: int) -> None:
        self._secret = secret
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl = timedelta(seconds=refresh_ttl_s)

    def access_token(self, *, user_id: str, org_id: str, session_id: str, now: datetime) -> str:
        claims = {
            "iss": ISSUER,
            "sub": user_id,
            "org": org_id,
            "sid": session_id,
            "typ": ACCESS,
            "jti": secrets.token_hex(16),
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + self.access_ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def decode_access(self, token: str) -> AccessClaims:
        """The algorithm list is fixed: a token saying `alg: none` (or RS256, to be checked with the
        secret as a public key) is refused before its signature is even looked at."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("The access token has expired.", code="token_expired") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("Invalid access token.") from None
        values = (claims["sub"], claims["org"], claims["sid"], claims["jti"])
        if claims["typ"] != ACCESS or not all(isinstance(v, str) and v for v in values):
            raise InvalidToken("Invalid access token.")
        return AccessClaims(*values, expires_at_unix=int(claims["exp"]))
