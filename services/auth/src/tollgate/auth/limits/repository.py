"""Every query on rate tiers, and on the tier and overrides that keys and organisations hold."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.accounts.models import Organization
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.limits.models import RateTier


class RateTierRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str, *, for_update: bool = False, for_share: bool = False) -> RateTier | None:
        """`for_share`: while assigning it, so a concurrent delete waits and then sees the use."""
        stmt = select(RateTier).where(RateTier.name == name)
        if for_update or for_share:
            stmt = stmt.with_for_update(read=not for_update)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_many(self, names: Sequence[str]) -> dict[str, RateTier]:
        if not names:
            return {}
        rows = await self.session.execute(select(RateTier).where(RateTier.name.in_(set(names))))
        return {t.name: t for t in rows.scalars().all()}

    async def all(self) -> Sequence[RateTier]:
        return (await self.session.execute(select(RateTier).order_by(RateTier.name))).scalars().all()

    async def add(self, tier: RateTier) -> RateTier:
        self.session.add(tier)
        await self.session.flush()
        await self.session.refresh(tier)
        return tier

    async def delete(self, tier: RateTier) -> None:
        await self.session.delete(tier)
        await self.session.flush()

    async def active_key_count(self, name: str) -> int:
        stmt = select(func.count(ApiKey.id)).where(ApiKey.rate_tier == name, ApiKey.revoked_at.is_(None))
        return int((await self.session.execute(stmt)).scalar_one())

    async def org_count(self, name: str) -> int:
        stmt = select(func.count(Organization.id)).where(Organization.rate_tier == name)
        return int((await self.session.execute(stmt)).scalar_one())

    async def detach_revoked_keys(self, name: str) -> None:
        """Revoked keys never authenticate again: their tier is history, not a use."""
        stmt = update(ApiKey).where(ApiKey.rate_tier == name, ApiKey.revoked_at.is_not(None))
        await self.session.execute(stmt.values(rate_tier=None))

    async def active_keys_under(self, name: str, *, untiered_too: bool) -> list[tuple[int, str]]:
        """Usable keys whose limits a change of this tier changes: keys on it, keys of
        organisations on it, and (`untiered_too`: it is the default tier) keys with no tier."""
        on_tier: list[ColumnElement[bool]] = [
            ApiKey.rate_tier == name,
            ApiKey.org_id.in_(select(Organization.id).where(Organization.rate_tier == name)),
        ]
        if untiered_too:
            on_tier.append(ApiKey.rate_tier.is_(None))
        stmt = (
            select(ApiKey.id, ApiKey.key_hash)
            .where(ApiKey.revoked_at.is_(None), or_(*on_tier))
            .order_by(ApiKey.id)
        )
        return [(row.id, row.key_hash) for row in (await self.session.execute(stmt)).all()]

    async def active_keys_of_org(self, org_id: str) -> list[tuple[int, str]]:
        """One indexed query (ix_api_keys_org_id): the keys an organisation's limits change."""
        stmt = (
            select(ApiKey.id, ApiKey.key_hash)
            .where(ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.id)
        )
        return [(row.id, row.key_hash) for row in (await self.session.execute(stmt)).all()]

    async def organization(self, org_id: str, *, for_update: bool = False) -> Organization | None:
        stmt = select(Organization).where(Organization.id == org_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()
