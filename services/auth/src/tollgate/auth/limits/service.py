"""The rules for rate tiers and for the limits set on keys and organisations (docs/limits.md).

Gets the session per call; never commits (the request owns the transaction). Every change that
moves a usable key's limits returns the `KeyChange`s to publish after the commit, so gateways
drop their cached principals, which carry the limits (Authenticate resolves them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Organization
from tollgate.auth.keys.events import KeyChange
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.repository import KeyRepository
from tollgate.auth.keys.service import KeyNotFound
from tollgate.auth.limits.effective import Measures, effective
from tollgate.auth.limits.models import RateTier
from tollgate.auth.limits.repository import RateTierRepository
from tollgate.auth.limits.schemas import LimitSettings, SaveTierRequest
from tollgate.common.auth_client import RateLimits
from tollgate.common.errors import NotFound, TollgateError

MEASURES = ("rpm", "tpm", "tpd")


class RateTierNotFound(NotFound):
    code = "rate_tier_not_found"


class OrganizationNotFound(NotFound):
    code = "organization_not_found"


class RateTierInUse(TollgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "rate_tier_in_use"


class RateTierConflict(TollgateError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "rate_tier_conflict"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TierSaved:
    tier: RateTier
    created: bool
    before: Measures | None  # None when created
    announcements: list[KeyChange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LimitsChange:
    """What a key's or organisation's limit call did, and whom to tell after the commit."""

    before: LimitSettings
    after: LimitSettings
    announcements: list[KeyChange]

    @property
    def changed(self) -> bool:
        return self.before != self.after


class LimitService:
    def __init__(self, default_tier: str = "", clock: Callable[[], datetime] = _utcnow) -> None:
        # AUTH_DEFAULT_RATE_TIER: the tier of keys that have none (the same as KeyService's).
        self.default_tier = default_tier
        self._now = clock

    # --- tiers ---

    async def tiers(self, session: AsyncSession) -> Sequence[RateTier]:
        return await RateTierRepository(session).all()

    async def save_tier(self, session: AsyncSession, req: SaveTierRequest) -> TierSaved:
        """Register-or-update by name, like /admin/group/save. Measures left out of an update stay
        as they are; a new tier takes null (not limited) for them."""
        repo = RateTierRepository(session)
        tier = await repo.get(req.name, for_update=True)
        created = tier is None
        if tier is None:
            tier = RateTier(name=req.name)
        before = None if created else Measures(tier.rpm, tier.tpm, tier.tpd)
        for measure in MEASURES:
            if created or measure in req.model_fields_set:
                setattr(tier, measure, getattr(req, measure))
        if not created and Measures(tier.rpm, tier.tpm, tier.tpd) == before:
            return TierSaved(tier, False, before)  # nothing changed: cached principals are still right
        tier.updated_at = func.now()
        try:
            # A savepoint: the same name created concurrently must not spoil the request.
            async with session.begin_nested():
                tier = await repo.add(tier)
        except IntegrityError:
            raise RateTierConflict(
                f"Rate tier {req.name!r} was saved concurrently; retry.", param="name"
            ) from None
        keys = await repo.active_keys_under(tier.name, untiered_too=tier.name == self.default_tier)
        return TierSaved(tier, created, before, self._announce(keys))

    async def delete_tier(self, session: AsyncSession, name: str) -> None:
        """Refused while a usable key or an organisation is on the tier, or while it is the default
        tier: deleting it would silently lift their limits. Revoked keys are detached."""
        repo = RateTierRepository(session)
        tier = await repo.get(name, for_update=True)
        if tier is None:
            raise RateTierNotFound(f"No rate tier named {name!r}.", param="name")
        if name == self.default_tier:
            raise RateTierInUse(
                f"Rate tier {name!r} is the default tier (AUTH_DEFAULT_RATE_TIER) of keys that have none; "
                "change that setting first.",
                param="name",
            )
        keys, orgs = await repo.active_key_count(name), await repo.org_count(name)
        if keys or orgs:
            raise RateTierInUse(
                f"Rate tier {name!r} is still used by {keys} API key(s) and {orgs} organisation(s); "
                "move them to another tier first.",
                param="name",
            )
        await repo.detach_revoked_keys(name)
        await repo.delete(tier)

    # --- keys ---

    async def key(self, session: AsyncSession, key_id: int, org_id: str | None, *, lock: bool) -> ApiKey:
        """A usable key; with `org_id` (an organisation admin), only one of that organisation's."""
        key = await KeyRepository(session).get(key_id, for_update=lock)
        if key is None or key.revoked_at is not None or (org_id is not None and key.org_id != org_id):
            raise KeyNotFound(f"No API key with id {key_id}.", param="id")
        return key

    async def set_key_limits(
        self, session: AsyncSession, key: ApiKey, values: LimitSettings, fields: set[str]
    ) -> LimitsChange:
        """`fields`: those the caller sent; the others stay as they are."""
        change = await self._apply(session, key, values, fields)
        if not change.changed:
            return change
        return LimitsChange(change.before, change.after, self._announce([(key.id, key.key_hash)]))

    async def key_limits(self, session: AsyncSession, key: ApiKey) -> RateLimits:
        """What Authenticate resolves for this key (its own override, else its tier's, else the
        default tier's): the same rules, read for an admin answer."""
        name = key.rate_tier or self.default_tier or None
        tier = (await RateTierRepository(session).get_many([name])).get(name) if name else None
        return effective(name, _measures(tier), _overrides(key))

    # --- organisations ---

    async def organization(
        self, session: AsyncSession, org_id: str, scope_org_id: str | None, *, lock: bool
    ) -> Organization:
        org = await RateTierRepository(session).organization(org_id, for_update=lock)
        if org is None or (scope_org_id is not None and org.id != scope_org_id):
            raise OrganizationNotFound(f"No organisation with id {org_id!r}.", param="org_id")
        return org

    async def set_org_limits(
        self, session: AsyncSession, org: Organization, values: LimitSettings, fields: set[str]
    ) -> LimitsChange:
        """Every usable key of the organisation carries its limits: all of them are announced."""
        change = await self._apply(session, org, values, fields)
        if not change.changed:
            return change
        keys = await RateTierRepository(session).active_keys_of_org(org.id)
        return LimitsChange(change.before, change.after, self._announce(keys))

    async def org_limits(self, session: AsyncSession, org: Organization) -> RateLimits:
        name = org.rate_tier
        tier = (await RateTierRepository(session).get_many([name])).get(name) if name else None
        return effective(name, _measures(tier), _overrides(org))

    # --- shared ---

    async def _apply(
        self, session: AsyncSession, row: ApiKey | Organization, values: LimitSettings, fields: set[str]
    ) -> LimitsChange:
        before = LimitSettings.of(row)
        # A shared lock on the tier: a concurrent delete of it waits for this commit, then sees the use.
        assigning = values.tier if "tier" in fields else None
        if assigning is not None and await RateTierRepository(session).get(assigning, for_share=True) is None:
            raise RateTierNotFound(f"No rate tier named {values.tier!r}.", param="tier")
        if "tier" in fields:
            row.rate_tier = values.tier
        for measure in MEASURES:
            if measure in fields:
                setattr(row, f"{measure}_limit", getattr(values, measure))
        await session.flush()
        return LimitsChange(before, LimitSettings.of(row), [])

    def _announce(self, keys: Sequence[tuple[int, str]]) -> list[KeyChange]:
        now = self._now()
        return [KeyChange(key_id, key_hash, "updated", now) for key_id, key_hash in keys]


def _measures(tier: RateTier | None) -> Measures | None:
    return None if tier is None else Measures(tier.rpm, tier.tpm, tier.tpd)


def _overrides(row: ApiKey | Organization) -> Measures:
    return Measures(row.rpm_limit, row.tpm_limit, row.tpd_limit)
