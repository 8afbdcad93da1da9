"""Access tokens (HS256 JWTs, short-lived) and refresh tokens (opaque, stored as sha256).

Signing keys rotate (docs/operations.md, "Rotate secrets"): a token names its key in the `kid`
header (tollgate.common.keyring.key_id of AUTH_JWT_SECRET) and is checked with exactly that key,
the current one or one still listed in AUTH_JWT_PREVIOUS_SECRETS; an unknown kid is refused. Tokens
from before key ids (no `kid`) are checked with each listed key: they live minutes, not months.
Refresh tokens are not signed at all, so a rotation never logs anyone out."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from tollgate.auth.sessions.errors import InvalidToken
from tollgate.common.keyring import Keyring

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
    def __init__(self, keys: Keyring | str, *, access_ttl_s: int, refresh_ttl_s: int) -> None:
        """`keys`: AUTH_JWT_SECRET and its previous secrets, or one secret (tests)."""
        keys = Keyring(keys) if isinstance(keys, str) else keys
        self._signing_kid = keys.current_id
        self._signing_secret = keys.current
        self._verifying = keys.by_id()
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
        return jwt.encode(
            claims, self._signing_secret, algorithm=ALGORITHM, headers={"kid": self._signing_kid}
        )

    @property
    def signing_kid(self) -> str:
        return self._signing_kid

    def decode_access(self, token: str) -> AccessClaims:
        """The algorithm list is fixed: a token saying `alg: none` (or RS256, to be checked with the
        secret as a public key) is refused before its signature is even looked at."""
        claims = None
        for secret in self._candidates(token):
            try:
                claims = jwt.decode(
                    token,
                    secret,
                    algorithms=[ALGORITHM],
                    issuer=ISSUER,
                    options={"require": _REQUIRED},
                )
                break
            except jwt.ExpiredSignatureError:
                raise InvalidToken("The access token has expired.", code="token_expired") from None
            except jwt.InvalidTokenError:
                continue
        if claims is None:
            raise InvalidToken("Invalid access token.")
        values = (claims["sub"], claims["org"], claims["sid"], claims["jti"])
        if claims["typ"] != ACCESS or not all(isinstance(v, str) and v for v in values):
            raise InvalidToken("Invalid access token.")
        return AccessClaims(*values, expires_at_unix=int(claims["exp"]))

    def _candidates(self, token: str) -> list[str]:
        """The key its `kid` names (none when that key is not listed); every key for a token from
        before key ids. The signature check comes after, with the fixed algorithm list."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return []
        kid = header.get("kid")
        if kid is None:
            return list(self._verifying.values())
        secret = self._verifying.get(kid) if isinstance(kid, str) else None
        return [secret] if secret is not None else []
