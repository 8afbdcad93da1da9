"""Who a signed-in user's access token stands for on every route: Authenticate's JWT branch.

The same checks as `/auth/me` (signature, algorithm, issuer, expiry: `TokenIssuer.decode_access`),
then the session must still be live (logout and a replayed refresh token end it) and the user must
still belong to the token's organisation. The principal is the user's, as a key of theirs without
grants of its own would be: key_id 0, every key permission, the user's role and group, no quota."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.keys.principal import EXPIRED, REVOKED, AuthResult
from tollgate.auth.sessions.errors import InvalidToken
from tollgate.auth.sessions.repository import SessionRepository, SessionSubject
from tollgate.auth.sessions.tokens import AccessClaims, TokenIssuer
from tollgate.common.auth_client import DELETE, READ, WRITE, Principal

INVALID_TOKEN = "invalid_token"
NO_KEY = 0  # a token is not a key: per-key quotas, budgets and grants do not apply to it
TOKEN_PERMISSIONS = (READ, WRITE, DELETE)
_EXPIRED_CODE = "token_expired"  # InvalidToken's code for a well-signed token past its `exp`


class TokenPrincipals:
    def __init__(self, tokens: TokenIssuer) -> None:
        self._tokens = tokens

    async def authenticate(self, session: AsyncSession, token: str) -> AuthResult:
        try:
            claims = self._tokens.decode_access(token)
        except InvalidToken as exc:
            return AuthResult(None, EXPIRED if exc.code == _EXPIRED_CODE else INVALID_TOKEN)
        return resolve_token(claims, await SessionRepository(session).subject(claims.session_id))


def resolve_token(claims: AccessClaims, subject: SessionSubject | None) -> AuthResult:
    """The rules, given the verified claims and the session row they name (None: no such session)."""
    if subject is None or (subject.user_id, subject.org_id) != (claims.user_id, claims.org_id):
        # Only a token signed with our secret gets here: a mismatch means a forged or foreign one.
        return AuthResult(None, INVALID_TOKEN)
    if subject.revoked_at is not None:
        return AuthResult(None, REVOKED)
    if subject.org_role is None:
        # Removed from the organisation the session acts in: it no longer spends that org's credits.
        return AuthResult(None, REVOKED)
    return AuthResult(
        Principal(
            key_id=NO_KEY,
            org_id=subject.org_id,
            user_id=subject.user_id,
            role=subject.role,
            group_id=subject.group_id or 0,
            permissions=TOKEN_PERMISSIONS,
            key_prefix="",
            expires_at_unix=claims.expires_at_unix,
            month_quota_micros=0,
            org_role=subject.org_role,
            org_limits=subject.org_limits,
            chat_recording=subject.chat_recording,
            chat_retention_days=subject.chat_retention_days,
        )
    )
