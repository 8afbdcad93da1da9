"""The audit log: who did what to which object, from where. Records join the caller's transaction
(never commits), so an action that rolls back leaves no record and a committed one always has one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.audit.models import AuditEvent
from tollgate.auth.audit.repository import AuditRepository

# Detail keys that could carry key material are dropped whatever a caller passes: the log is read
# by admins and kept long, so it must never become a place where secrets leak.
_SECRET_KEY = re.compile(r"(api_?key|secret|password|token|hash)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, and from where. key_id is None for a signed-in person acting without a key."""

    key_id: int | None
    user_id: str | None
    org_id: str | None
    ip: str | None
    request_id: str | None


def scrub(details: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if not _SECRET_KEY.search(k)}


class AuditLog:
    async def record(
        self,
        session: AsyncSession,
        actor: Actor,
        action: str,
        target_type: str,
        target_id: object | None,
        details: Mapping[str, Any] | None = None,
        *,
        org_id: str | None = None,
    ) -> None:
        """`org_id`: the organisation the action concerns (None for platform-wide objects)."""
        await AuditRepository(session).add(
            AuditEvent(
                org_id=org_id,
                actor_key_id=actor.key_id,
                actor_user_id=actor.user_id or None,
                actor_org_id=actor.org_id or None,
                action=action,
                target_type=target_type,
                target_id=None if target_id is None else str(target_id),
                ip=actor.ip,
                request_id=actor.request_id,
                details=scrub(details or {}),
            )
        )

    async def search(
        self,
        session: AsyncSession,
        *,
        action: str | None,
        actor_key_id: int | None,
        org_id: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[AuditEvent], int]:
        """`org_id` None: every record (platform admins); else only that organisation's."""
        return await AuditRepository(session).page(
            action=action, actor_key_id=actor_key_id, org_id=org_id, limit=limit, offset=offset
        )
