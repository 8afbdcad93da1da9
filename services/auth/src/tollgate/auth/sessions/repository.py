"""Every query on login_sessions and refresh_tokens (and who a session's access tokens stand for)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Membership, Organization, User
from tollgate.auth.limits.effective import Measures, effective
from tollgate.auth.limits.models import RateTier
from tollgate.auth.sessions.models import LoginSession, RefreshToken
from tollgate.common.auth_client import NO_RATE_LIMITS, RateLimits


@dataclass(frozen=True, slots=True)
class SessionSubject:
    """A login session and the user it signed in, as Authenticate needs them for an access token."""

    session_id: str
    user_id: str
    org_id: str  # the organisation the session acts in (the token's `org` claim)
    revoked_at: datetime | None
    role: str  # the user's platform role: "user" | "admin"
    group_id: int | None
    org_role: str | None  # the user's membership role in org_id; None when no longer a member
    org_limits: RateLimits = NO_RATE_LIMITS  # the organisation's rate limits (a token has no key's)
    chat_recording: str = "off"  # the organisation's chat records setting (docs/chat-records.md)
    chat_retention_days: int = 0


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, *rows: LoginSession | RefreshToken) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    async def refresh_token_for_update(self, token_hash: str) -> tuple[RefreshToken, LoginSession] | None:
        """Locks the token's row: of two requests rotating one token, the second waits, then sees
        it used (and treats it as a replay)."""
        stmt = (
            select(RefreshToken, LoginSession)
            .join(LoginSession, LoginSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update(of=RefreshToken)
        )
        row = (await self.session.execute(stmt)).first()
        return None if row is None else (row[0], row[1])

    async def revoke(self, session_id: str, now: datetime, reason: str) -> None:
        """Revokes the whole family; the first revocation's time and reason are kept."""
        stmt = (
            update(LoginSession)
            .where(LoginSession.id == session_id, LoginSession.revoked_at.is_(None))
            .values(revoked_at=now, revoked_reason=reason)
        )
        await self.session.execute(stmt)

    async def revoke_member_sessions(self, user_id: str, org_id: str, now: datetime, reason: str) -> None:
        """Ends every live session of the user acting in the organisation (they left it)."""
        stmt = (
            update(LoginSession)
            .where(
                LoginSession.user_id == user_id,
                LoginSession.org_id == org_id,
                LoginSession.revoked_at.is_(None),
            )
            .values(revoked_at=now, revoked_reason=reason)
        )
        await self.session.execute(stmt)

    async def is_active(self, session_id: str) -> bool:
        stmt = select(LoginSession.revoked_at).where(LoginSession.id == session_id)
        row = (await self.session.execute(stmt)).first()
        return row is not None and row.revoked_at is None

    async def subject(self, session_id: str) -> SessionSubject | None:
        """One statement on primary keys: the session, its user, their membership, and the
        organisation's rate limits (its overrides and its tier's numbers)."""
        stmt = (
            select(
                LoginSession.id,
                LoginSession.user_id,
                LoginSession.org_id,
                LoginSession.revoked_at,
                User.role,
                User.group_id,
                Membership.role.label("org_role"),
                RateTier.name.label("tier"),
                RateTier.rpm,
                RateTier.tpm,
                RateTier.tpd,
                Organization.rpm_limit,
                Organization.tpm_limit,
                Organization.tpd_limit,
                Organization.chat_recording,
                Organization.chat_retention_days,
            )
            .join(User, User.id == LoginSession.user_id)
            .outerjoin(
                Membership,
                and_(Membership.org_id == LoginSession.org_id, Membership.user_id == LoginSession.user_id),
            )
            .outerjoin(Organization, Organization.id == LoginSession.org_id)
            .outerjoin(RateTier, RateTier.name == Organization.rate_tier)
            .where(LoginSession.id == session_id)
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            return None
        tier = None if row.tier is None else Measures(row.rpm, row.tpm, row.tpd)
        overrides = Measures(row.rpm_limit, row.tpm_limit, row.tpd_limit)
        return SessionSubject(
            *row[:7],
            org_limits=effective(row.tier, tier, overrides),
            chat_recording=row.chat_recording or "off",
            chat_retention_days=row.chat_retention_days or 0,
        )
