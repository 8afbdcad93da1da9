"""Every query on model_grants, and the keys a grant change affects."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.auth.grants.models import SUBJECT_GROUP, SUBJECT_KEY, ModelGrant
from tollgate.auth.keys.models import ApiKey


class GrantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def models_for_key(self, key_id: int, group_id: int | None) -> list[str]:
        """Authenticate's lookup: the key's grants and its group's, one query on the primary key."""
        subject = and_(ModelGrant.subject_type == SUBJECT_KEY, ModelGrant.subject_id == key_id)
        if group_id:
            subject = or_(
                subject, and_(ModelGrant.subject_type == SUBJECT_GROUP, ModelGrant.subject_id == group_id)
            )
        return list((await self.session.execute(select(ModelGrant.model).where(subject))).scalars().all())

    async def of_subject(self, subject_type: str, subject_id: int) -> Sequence[ModelGrant]:
        stmt = (
            select(ModelGrant)
            .where(ModelGrant.subject_type == subject_type, ModelGrant.subject_id == subject_id)
            .order_by(ModelGrant.model)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def add(self, subject_type: str, subject_id: int, models: Sequence[str]) -> list[str]:
        """Idempotent; returns the models that were not granted before."""
        stmt = (
            insert(ModelGrant)
            .values([{"subject_type": subject_type, "subject_id": subject_id, "model": m} for m in models])
            .on_conflict_do_nothing()
            .returning(ModelGrant.model)
        )
        return sorted((await self.session.execute(stmt)).scalars().all())

    async def remove(self, subject_type: str, subject_id: int, models: Sequence[str]) -> list[str]:
        """Returns the models that were granted and no longer are."""
        stmt = (
            delete(ModelGrant)
            .where(
                ModelGrant.subject_type == subject_type,
                ModelGrant.subject_id == subject_id,
                ModelGrant.model.in_(models),
            )
            .returning(ModelGrant.model)
        )
        return sorted((await self.session.execute(stmt)).scalars().all())

    async def active_keys_in_group(self, group_id: int) -> list[tuple[int, str]]:
        """(id, key_hash) of the group's usable keys: whom to announce a group grant change to."""
        stmt = select(ApiKey.id, ApiKey.key_hash).where(
            ApiKey.group_id == group_id, ApiKey.revoked_at.is_(None)
        )
        return [(row.id, row.key_hash) for row in (await self.session.execute(stmt)).all()]
