"""Login sessions (one refresh-token family each) and their refresh tokens, stored hashed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from tollgate.auth.database import Base


class LoginSession(Base):
    """One sign-in: every refresh token rotated from it, and every access token minted from those,
    carries its id, so revoking this row ends them all (logout, a replayed refresh token)."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(Text, primary_key=True)  # "ses_<hex>", the `sid` claim
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    org_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # "logout" | "refresh_token_reused" | "switched_organization" | "member_removed"
    revoked_reason: Mapped[str | None] = mapped_column(Text)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # sha256 of the opaque token: a random 256-bit secret needs no slow hash, only not to be stored.
    token_hash: Mapped[str] = mapped_column(Text, unique=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("login_sessions.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when rotated; presenting a used token again means it leaked (or was replayed).
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
