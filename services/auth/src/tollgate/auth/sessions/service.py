"""The rules for users signing in: registration, login, token rotation, logout, who is calling.

Gets its collaborators in the constructor and the session per call; never commits (the request
owns the transaction). Passwords and tokens are never logged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Organization, User
from tollgate.auth.accounts.repository import AccountRepository
from tollgate.auth.accounts.service import create_personal_account, new_id
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.sessions.errors import (
    EmailTaken,
    InvalidCredentials,
    InvalidToken,
    RefreshTokenReused,
    WeakPassword,
)
from tollgate.auth.sessions.models import LoginSession, RefreshToken
from tollgate.auth.sessions.passwords import Passwords
from tollgate.auth.sessions.ratelimit import LoginLimiter
from tollgate.auth.sessions.repository import SessionRepository
from tollgate.auth.sessions.schemas import MIN_PASSWORD_LENGTH, RegisterRequest
from tollgate.auth.sessions.tokens import (
    REFRESH_PREFIX,
    TokenIssuer,
    hash_refresh_token,
    looks_like_jwt,
    new_refresh_token,
)
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden

log = logging.getLogger(__name__)

LOGOUT = "logout"
REUSED = "refresh_token_reused"
SWITCHED = "switched_organization"
_LOGIN_EMAIL_INDEX = "uq_users_login_email"
_MAX_REFRESH_TOKEN_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str | None  # None for /auth/token (IndoxRouter answers an access token only)
    expires_in: int


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str | None  # None for a key without a user (the bootstrap admin key)
    org_id: str
    session_id: str | None  # set for access tokens: the refresh family they came from
    via: Literal["access_token", "api_key"]
    key: Principal | None = None  # the key itself, for an API key (its role and permissions)


@dataclass(frozen=True, slots=True)
class Identity:
    user: User | None
    org: Organization | None
    role: str | None


class SessionService:
    def __init__(
        self,
        passwords: Passwords,
        tokens: TokenIssuer,
        limiter: LoginLimiter,
        keys: KeyService,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._passwords = passwords
        self._tokens = tokens
        self._limiter = limiter
        self._keys = keys
        self._now = clock

    async def register(self, session: AsyncSession, req: RegisterRequest) -> tuple[User, Tokens]:
        if len(req.password) < MIN_PASSWORD_LENGTH:
            raise WeakPassword(
                f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.", param="password"
            )
        if await AccountRepository(session).user_with_password(req.email) is not None:
            raise EmailTaken("An account with this email already exists.", param="email")
        password_hash = await self._passwords.hash(req.password)
        try:
            account = await create_personal_account(
                session, name=req.name, email=req.email, password_hash=password_hash
            )
        except IntegrityError as exc:
            # Two registrations racing for one email: the unique index decides.
            if _LOGIN_EMAIL_INDEX not in str(exc.orig):
                raise
            raise EmailTaken("An account with this email already exists.", param="email") from None
        tokens = await self._start(session, account.user, with_refresh=True)
        log.info("user registered", extra={"user_id": account.user.id, "org_id": account.org.id})
        return account.user, tokens

    async def login(
        self, session: AsyncSession, email: str, password: str, client_ip: str, *, with_refresh: bool = True
    ) -> Tokens:
        await self._limiter.attempt(email, client_ip)  # 429 before any password work
        user = await AccountRepository(session).user_with_password(email)
        verified = await self._passwords.verify(user.password_hash if user else None, password)
        if user is None or user.password_hash is None or not verified:
            log.info("login refused", extra={"user_id": user.id if user else None})
            raise InvalidCredentials("Incorrect email or password.")
        await self._limiter.succeeded(email, client_ip)
        if self._passwords.needs_rehash(user.password_hash):
            user.password_hash = await self._passwords.hash(password)
        return await self._start(session, user, with_refresh=with_refresh)

    async def refresh(self, session: AsyncSession, refresh_token: str) -> Tokens:
        """Rotation: the presented token is spent and a new pair returned. A spent token coming
        back means two parties hold it, so the whole family is revoked (and that is committed)."""
        if not refresh_token.startswith(REFRESH_PREFIX) or len(refresh_token) > _MAX_REFRESH_TOKEN_LENGTH:
            raise InvalidToken("Invalid refresh token.")
        repo = SessionRepository(session)
        found = await repo.refresh_token_for_update(hash_refresh_token(refresh_token))
        if found is None:
            raise InvalidToken("Invalid refresh token.")
        token, family = found
        now = self._now()
        if family.revoked_at is not None:
            raise InvalidToken("This session has ended; sign in again.", code="session_revoked")
        if token.used_at is not None:
            await repo.revoke(family.id, now, REUSED)
            log.warning(
                "refresh token reused; session revoked",
                extra={"session_id": family.id, "user_id": family.user_id},
            )
            raise RefreshTokenReused("This refresh token was already used; the session has been revoked.")
        if token.expires_at <= now:
            raise InvalidToken("The refresh token has expired; sign in again.", code="token_expired")
        token.used_at = now
        new_refresh = await self._issue_refresh(repo, family.id, now)
        access = self._tokens.access_token(
            user_id=family.user_id, org_id=family.org_id, session_id=family.id, now=now
        )
        return Tokens(access, new_refresh, self._tokens.access_ttl_s)

    async def logout(self, session: AsyncSession, caller: Caller) -> None:
        if caller.session_id is None:
            raise InvalidToken("Logging out needs the access token of a session, not an API key.")
        await SessionRepository(session).revoke(caller.session_id, self._now(), LOGOUT)

    async def switch_organization(self, session: AsyncSession, caller: Caller, org_id: str) -> Tokens:
        """A new session of the same user in another organisation they belong to (the console's
        organisation switch); the caller's session ends, so one sign-in holds one live session."""
        if caller.via != "access_token" or caller.session_id is None or caller.user_id is None:
            raise Forbidden(
                "An API key acts only in its own organisation; switching needs a signed-in session.",
                code="organization_mismatch",
            )
        accounts = AccountRepository(session)
        # One answer whether the organisation exists or not: ids are not probed through this.
        if await accounts.role_in(org_id, caller.user_id) is None:
            raise Forbidden("You are not a member of this organisation.", code="not_a_member")
        user = await accounts.get_user(caller.user_id)
        if user is None:
            raise InvalidToken("This account no longer exists.", code="unknown_user")
        await SessionRepository(session).revoke(caller.session_id, self._now(), SWITCHED)
        tokens = await self._start(session, user, with_refresh=True, org_id=org_id)
        log.info(
            "session switched organisation",
            extra={"user_id": user.id, "from_org_id": caller.org_id, "org_id": org_id},
        )
        return tokens

    async def authenticate(self, session: AsyncSession, credential: str) -> Caller:
        """An access token of a live session, or an API key: both stand for a user here."""
        if looks_like_jwt(credential):
            claims = self._tokens.decode_access(credential)
            # Checked, not only signed: logout and a replayed refresh token end access at once.
            if not await SessionRepository(session).is_active(claims.session_id):
                raise InvalidToken("This session has ended; sign in again.", code="session_revoked")
            return Caller(claims.user_id, claims.org_id, claims.session_id, "access_token")
        result = await self._keys.authenticate(session, credential)
        if result.principal is None:
            raise InvalidToken("Invalid credentials.", code=result.reason or "invalid_api_key")
        principal = result.principal
        return Caller(principal.user_id or None, principal.org_id, None, "api_key", principal)

    async def identify(
        self, session: AsyncSession, caller: Caller, requested_org: str | None = None
    ) -> Identity:
        """The caller in their credential's organisation, or in `requested_org` (the guard API's
        `Swarms-Organization`) when they are a member of it; an API key stays in its own."""
        accounts = AccountRepository(session)
        org_id = requested_org or caller.org_id
        if org_id != caller.org_id and caller.via == "api_key":
            raise Forbidden("An API key acts only in its own organisation.", code="organization_mismatch")
        user = await accounts.get_user(caller.user_id) if caller.user_id else None
        role = await accounts.role_in(org_id, caller.user_id) if caller.user_id else None
        if org_id != caller.org_id and role is None:
            raise Forbidden("You are not a member of this organisation.", code="not_a_member")
        org = await accounts.get_organization(org_id)
        return Identity(user, org, role)

    async def _start(
        self, session: AsyncSession, user: User, *, with_refresh: bool, org_id: str | None = None
    ) -> Tokens:
        """A new session (refresh family) acting in `org_id`, by default the user's personal one."""
        now = self._now()
        repo = SessionRepository(session)
        acting = org_id or user.org_id
        family = LoginSession(id=new_id("ses"), user_id=user.id, org_id=acting)
        await repo.add(family)
        refresh = await self._issue_refresh(repo, family.id, now) if with_refresh else None
        access = self._tokens.access_token(user_id=user.id, org_id=acting, session_id=family.id, now=now)
        return Tokens(access, refresh, self._tokens.access_ttl_s)

    async def _issue_refresh(self, repo: SessionRepository, session_id: str, now: datetime) -> str:
        plaintext = new_refresh_token()
        await repo.add(
            RefreshToken(
                token_hash=hash_refresh_token(plaintext),
                session_id=session_id,
                issued_at=now,
                expires_at=now + self._tokens.refresh_ttl,
            )
        )
        return plaintext
