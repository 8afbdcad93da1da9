"""An organisation's chat records setting: the recording mode and retention the gateway reads from
the principal (Authenticate), so every usable key of the organisation is announced after a change
and gateways drop their cached principals. Never commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Organization
from tollgate.auth.keys.events import KeyChange
from tollgate.auth.limits.repository import RateTierRepository
from tollgate.auth.limits.service import OrganizationNotFound
from tollgate.auth.recording.schemas import RecordingRequest, RecordingSetting


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RecordingChange:
    before: RecordingSetting
    after: RecordingSetting
    announcements: list[KeyChange]

    @property
    def changed(self) -> bool:
        return self.before != self.after


def setting_of(org: Organization) -> RecordingSetting:
    return RecordingSetting(org_id=org.id, mode=org.chat_recording, retention_days=org.chat_retention_days)  # type: ignore[arg-type]


class RecordingService:
    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self._now = clock

    async def organization(
        self, session: AsyncSession, org_id: str, scope_org_id: str | None, *, lock: bool
    ) -> Organization:
        """Another organisation's answers 404 to an organisation admin, as if missing."""
        org = await RateTierRepository(session).organization(org_id, for_update=lock)
        if org is None or (scope_org_id is not None and org.id != scope_org_id):
            raise OrganizationNotFound(f"No organisation with id {org_id!r}.", param="org_id")
        return org

    async def update(
        self, session: AsyncSession, org: Organization, body: RecordingRequest
    ) -> RecordingChange:
        before = setting_of(org)
        if body.mode is not None:
            org.chat_recording = body.mode
        if body.retention_days is not None:
            org.chat_retention_days = body.retention_days
        after = setting_of(org)
        if before == after:
            return RecordingChange(before, after, [])
        await session.flush()
        keys = await RateTierRepository(session).active_keys_of_org(org.id)
        now = self._now()
        return RecordingChange(before, after, [KeyChange(k, h, "updated", now) for k, h in keys])
