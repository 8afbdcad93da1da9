"""Model authorisation rules (the Bedrock-style gateway): which models a key may call, and the admin
changes to it.

A key may call a model granted to the key itself or to its group. A key with no grants, on it or
on its group, may call every model (`AUTH_UNGRANTED_MEANS_ALL`, default true) or none (false).
Never commits: the request or the gRPC call owns the transaction. Grant changes return the
`KeyChange`s to publish after the commit, so gateways drop their cached principals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.grants.models import SUBJECT_GROUP, SUBJECT_KEY, ModelGrant
from tollgate.auth.grants.repository import GrantRepository
from tollgate.auth.groups.service import GroupService
from tollgate.auth.keys.events import KeyChange
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.repository import KeyRepository
from tollgate.auth.keys.service import KeyNotFound
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden


class GrantWouldWiden(Forbidden):
    code = "grant_would_widen"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class GrantChange:
    """What one authorise/deauthorise call did, and whom to tell after the commit."""

    changed: list[str]
    announcements: list[KeyChange]
    org_id: str | None = None  # the key's organisation (None for a group: groups are platform-wide)


@dataclass(frozen=True, slots=True)
class KeyGrants:
    key: ApiKey
    own: Sequence[ModelGrant]
    group: Sequence[ModelGrant]
    restricted: bool


class ModelGrants:
    def __init__(self, *, ungranted_means_all: bool = True, clock: Callable[[], datetime] = _utcnow) -> None:
        self.ungranted_means_all = ungranted_means_all
        self._now = clock

    def restricted(self, granted: Sequence[str]) -> bool:
        return bool(granted) or not self.ungranted_means_all

    def effective(self, own: Iterable[str], group: Iterable[str]) -> frozenset[str] | None:
        """The models a key may call given its own and its group's grants; None means every model."""
        granted = frozenset(own) | frozenset(group)
        return granted if self.restricted(sorted(granted)) else None

    async def restrict(self, session: AsyncSession, principal: Principal) -> Principal:
        """The principal with its model authorisation filled in (Authenticate's second query)."""
        granted = await GrantRepository(session).models_for_key(principal.key_id, principal.group_id or None)
        if not self.restricted(granted):
            return principal
        return replace(principal, models_restricted=True, granted_models=frozenset(granted))

    # --- groups ---

    async def group_models(self, session: AsyncSession, group_id: int) -> Sequence[ModelGrant]:
        await GroupService().require(session, group_id)
        return await GrantRepository(session).of_subject(SUBJECT_GROUP, group_id)

    async def authorize_group(
        self, session: AsyncSession, group_id: int, models: Sequence[str]
    ) -> GrantChange:
        await GroupService().require(session, group_id)
        added = await GrantRepository(session).add(SUBJECT_GROUP, group_id, _unique(models))
        return GrantChange(added, await self._group_announcements(session, group_id, added))

    async def deauthorize_group(
        self, session: AsyncSession, group_id: int, models: Sequence[str]
    ) -> GrantChange:
        await GroupService().require(session, group_id)
        removed = await GrantRepository(session).remove(SUBJECT_GROUP, group_id, _unique(models))
        return GrantChange(removed, await self._group_announcements(session, group_id, removed))

    # --- single keys ---

    async def key_models(self, session: AsyncSession, key_id: int, org_id: str | None = None) -> KeyGrants:
        key = await self._active_key(session, key_id, org_id)
        repo = GrantRepository(session)
        own = await repo.of_subject(SUBJECT_KEY, key.id)
        group = await repo.of_subject(SUBJECT_GROUP, key.group_id) if key.group_id else []
        return KeyGrants(key, own, group, self.restricted([g.model for g in [*own, *group]]))

    async def authorize_key(
        self, session: AsyncSession, key_id: int, models: Sequence[str], org_id: str | None = None
    ) -> GrantChange:
        """`org_id`: an organisation admin's call: only that organisation's keys, and only when the
        change does not widen what the key may call (see `widens`)."""
        key = await self._active_key(session, key_id, org_id)
        if org_id is not None:
            await self._ensure_narrowing(session, key, lambda own: own | set(models))
        added = await GrantRepository(session).add(SUBJECT_KEY, key.id, _unique(models))
        return GrantChange(added, [self._announce(key.id, key.key_hash)] if added else [], key.org_id)

    async def deauthorize_key(
        self, session: AsyncSession, key_id: int, models: Sequence[str], org_id: str | None = None
    ) -> GrantChange:
        key = await self._active_key(session, key_id, org_id)
        if org_id is not None:
            await self._ensure_narrowing(session, key, lambda own: own - set(models))
        removed = await GrantRepository(session).remove(SUBJECT_KEY, key.id, _unique(models))
        return GrantChange(removed, [self._announce(key.id, key.key_hash)] if removed else [], key.org_id)

    async def _ensure_narrowing(
        self, session: AsyncSession, key: ApiKey, change: Callable[[set[str]], set[str]]
    ) -> None:
        repo = GrantRepository(session)
        own = {g.model for g in await repo.of_subject(SUBJECT_KEY, key.id)}
        group = (
            {g.model for g in await repo.of_subject(SUBJECT_GROUP, key.group_id)} if key.group_id else set()
        )
        if widens(self.effective(own, group), self.effective(change(own), group)):
            raise GrantWouldWiden(
                "An organisation admin may only narrow the models a key may call; "
                "widening them needs a platform admin key.",
                param="models",
            )

    async def _group_announcements(
        self, session: AsyncSession, group_id: int, changed: Sequence[str]
    ) -> list[KeyChange]:
        if not changed:
            return []  # nothing changed: cached principals are still right
        keys = await GrantRepository(session).active_keys_in_group(group_id)
        return [self._announce(key_id, key_hash) for key_id, key_hash in keys]

    def _announce(self, key_id: int, key_hash: str) -> KeyChange:
        return KeyChange(key_id, key_hash, "updated", self._now())

    async def _active_key(self, session: AsyncSession, key_id: int, org_id: str | None = None) -> ApiKey:
        key = await KeyRepository(session).get(key_id)
        if key is None or key.revoked_at is not None or (org_id is not None and key.org_id != org_id):
            raise KeyNotFound(f"No API key with id {key_id}.", param="key_id")
        return key


def widens(before: frozenset[str] | None, after: frozenset[str] | None) -> bool:
    """Whether a key may call a model after a change that it could not call before (None: every
    model). Removing a key's last grant widens it when ungranted keys may call everything."""
    if after is None:
        return before is not None
    return before is not None and not after <= before


def _unique(models: Sequence[str]) -> list[str]:
    return sorted(set(models))
