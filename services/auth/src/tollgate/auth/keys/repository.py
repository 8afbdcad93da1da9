"""Every query on api_keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Row, Table, and_, bindparam, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tollgate.auth.accounts.models import Membership, Organization, User
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.principal import KeyRecord
from tollgate.auth.limits.effective import Measures, effective
from tollgate.auth.limits.models import RateTier
from tollgate.common.auth_client import RateLimits

_AUTH_COLUMNS = (
    ApiKey.id,
    ApiKey.org_id,
    ApiKey.user_id,
    ApiKey.role,
    ApiKey.group_id,
    ApiKey.permissions,
    ApiKey.key_prefix,
    ApiKey.month_quota_micros,
    ApiKey.expires_at,
    ApiKey.revoked_at,
    ApiKey.key_hash,
    ApiKey.key_pepper_id,
)
_KEY_TIER = aliased(RateTier, name="key_tier")
_ORG_TIER = aliased(RateTier, name="org_tier")
# The key's and its organisation's limits: tier numbers and overrides (see _limits).
_LIMIT_COLUMNS = (
    _KEY_TIER.name.label("kt_name"),
    _KEY_TIER.rpm.label("kt_rpm"),
    _KEY_TIER.tpm.label("kt_tpm"),
    _KEY_TIER.tpd.label("kt_tpd"),
    ApiKey.rpm_limit.label("k_rpm"),
    ApiKey.tpm_limit.label("k_tpm"),
    ApiKey.tpd_limit.label("k_tpd"),
    _ORG_TIER.name.label("ot_name"),
    _ORG_TIER.rpm.label("ot_rpm"),
    _ORG_TIER.tpm.label("ot_tpm"),
    _ORG_TIER.tpd.label("ot_tpd"),
    Organization.rpm_limit.label("o_rpm"),
    Organization.tpm_limit.label("o_tpm"),
    Organization.tpd_limit.label("o_tpd"),
    Organization.chat_recording,
    Organization.chat_retention_days,
)


@dataclass(frozen=True, slots=True)
class KeyFilter:
    q: str | None = None
    name: str | None = None
    group_id: int | None = None
    role: str | None = None
    org_id: str | None = None  # an organisation admin's list: only that organisation's keys


def _limits(row: Row[Any]) -> tuple[RateLimits, RateLimits]:
    key_tier = None if row.kt_name is None else Measures(row.kt_rpm, row.kt_tpm, row.kt_tpd)
    org_tier = None if row.ot_name is None else Measures(row.ot_rpm, row.ot_tpm, row.ot_tpd)
    return (
        effective(row.kt_name, key_tier, Measures(row.k_rpm, row.k_tpm, row.k_tpd)),
        effective(row.ot_name, org_tier, Measures(row.o_rpm, row.o_tpm, row.o_tpd)),
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find_for_auth(self, key_hash: str, default_tier: str = "") -> KeyRecord | None:
        """Plain columns rather than an ORM entity: no identity map work on the hot path. The
        user's role in the key's organisation and the key's and organisation's rate limits come
        in the same statement (primary-key joins). `default_tier`: the tier of a key with none."""
        return await self._find_for_auth(ApiKey.key_hash == key_hash, default_tier)

    async def find_for_auth_any(self, key_hashes: Sequence[str], default_tier: str = "") -> KeyRecord | None:
        """The same under any of several hashes (the previous peppers' during a rotation)."""
        return await self._find_for_auth(ApiKey.key_hash.in_(key_hashes), default_tier)

    async def rehash(self, key_id: int, *, old_hash: str, new_hash: str, pepper_id: str) -> bool:
        """Moves a key's hash to another pepper. Conditional on the hash it was found under, so
        racing replicas write it once and never overwrite each other (the loser's row no longer
        matches once the winner commits); True when this call wrote it."""
        stmt = (
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.key_hash == old_hash)
            .values(key_hash=new_hash, key_pepper_id=pepper_id)
            .execution_options(synchronize_session=False)
        )
        result = await self.session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def _find_for_auth(self, condition: ColumnElement[bool], default_tier: str) -> KeyRecord | None:
        key_tier: ColumnElement[str | None] = ApiKey.rate_tier
        if default_tier:
            key_tier = func.coalesce(ApiKey.rate_tier, literal(default_tier))
        stmt = (
            select(*_AUTH_COLUMNS, Membership.role.label("org_role"), *_LIMIT_COLUMNS)
            .join(Organization, Organization.id == ApiKey.org_id)
            .outerjoin(
                Membership, and_(Membership.org_id == ApiKey.org_id, Membership.user_id == ApiKey.user_id)
            )
            .outerjoin(_KEY_TIER, _KEY_TIER.name == key_tier)
            .outerjoin(_ORG_TIER, _ORG_TIER.name == Organization.rate_tier)
            .where(condition)
        )
        row = (await self.session.execute(stmt)).first()
        if row is None:
            return None
        key_limits, org_limits = _limits(row)
        return KeyRecord(
            id=row.id,
            org_id=row.org_id,
            user_id=row.user_id,
            role=row.role,
            group_id=row.group_id,
            permissions=tuple(row.permissions),
            key_prefix=row.key_prefix,
            month_quota_micros=row.month_quota_micros,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            org_role=row.org_role,
            key_limits=key_limits,
            org_limits=org_limits,
            key_hash=row.key_hash,
            key_pepper_id=row.key_pepper_id,
            chat_recording=row.chat_recording,
            chat_retention_days=row.chat_retention_days,
        )

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        await self.session.refresh(key)  # server defaults (created_at, permissions)
        return key

    async def get(self, key_id: int, *, for_update: bool = False) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.id == key_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def page(
        self, flt: KeyFilter, *, limit: int, offset: int
    ) -> tuple[list[tuple[ApiKey, str | None]], int]:
        """Active (unrevoked) keys with their user's email, newest first, and the filtered total."""
        conditions: list[ColumnElement[bool]] = [ApiKey.revoked_at.is_(None)]
        if flt.q:
            pattern = f"%{_like_escape(flt.q)}%"
            conditions.append(
                or_(
                    ApiKey.name.ilike(pattern, escape="\\"),
                    ApiKey.key_prefix.ilike(pattern, escape="\\"),
                    User.email.ilike(pattern, escape="\\"),
                )
            )
        if flt.name:
            conditions.append(func.lower(ApiKey.name) == flt.name.lower())
        if flt.group_id is not None:
            conditions.append(ApiKey.group_id == flt.group_id)
        if flt.role:
            conditions.append(ApiKey.role == flt.role)
        if flt.org_id is not None:
            conditions.append(ApiKey.org_id == flt.org_id)
        base = select(ApiKey, User.email).outerjoin(User, User.id == ApiKey.user_id).where(*conditions)
        total = (await self.session.execute(select(func.count()).select_from(base.subquery()))).scalar_one()
        rows = await self.session.execute(base.order_by(ApiKey.id.desc()).limit(limit).offset(offset))
        return [(key, email) for key, email in rows.all()], int(total)

    async def insert_if_absent(self, **values: object) -> None:
        stmt = insert(ApiKey).values(**values).on_conflict_do_nothing(index_elements=[ApiKey.key_hash])
        await self.session.execute(stmt)

    async def get_by_hash(self, key_hash: str) -> ApiKey | None:
        return (
            await self.session.execute(select(ApiKey).where(ApiKey.key_hash == key_hash))
        ).scalar_one_or_none()

    async def active_named(self, org_id: str, name: str) -> Sequence[ApiKey]:
        stmt = select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.name == name, ApiKey.revoked_at.is_(None))
        return (await self.session.execute(stmt)).scalars().all()

    async def owned_by(self, user_id: str, org_id: str, *, limit: int) -> Sequence[ApiKey]:
        """A user's keys in one organisation, revoked ones included, newest first."""
        stmt = (
            select(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.org_id == org_id)
            .order_by(ApiKey.id.desc())
            .limit(limit)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def get_owned(self, key_id: int, user_id: str, org_id: str) -> ApiKey | None:
        """Ownership is part of the lookup, so someone else's key reads exactly like a missing one."""
        stmt = select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id, ApiKey.org_id == org_id)
        return (await self.session.execute(stmt.with_for_update())).scalar_one_or_none()

    async def mark_used(self, stamps: Mapping[int, datetime]) -> None:
        """One executemany for a whole batch; never moves last_used_at backwards (replicas race)."""
        table = cast(Table, ApiKey.__table__)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .where(or_(table.c.last_used_at.is_(None), table.c.last_used_at < bindparam("b_ts")))
            .values(last_used_at=bindparam("b_ts"))
        )
        # Sorted ids take row locks in one order everywhere, so two replicas cannot deadlock.
        params = [{"b_id": key_id, "b_ts": stamps[key_id]} for key_id in sorted(stamps)]
        await self.session.execute(stmt, params)

    async def active_of_member(self, user_id: str, org_id: str) -> Sequence[ApiKey]:
        """A member's usable keys in one organisation (locked): what a role change or a removal
        must announce or revoke."""
        stmt = (
            select(ApiKey)
            .where(ApiKey.user_id == user_id, ApiKey.org_id == org_id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.id)
            .with_for_update()
        )
        return (await self.session.execute(stmt)).scalars().all()
