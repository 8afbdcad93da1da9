"""The operator's admin key at start, and the schema the migrations build."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.auth.accounts.models import SYSTEM_ORG_ID, Organization
from tollgate.auth.config import DEFAULT_ALEMBIC_INI as ALEMBIC_INI
from tollgate.auth.keys.bootstrap import BOOTSTRAP_KEY_NAME, ensure_bootstrap_admin
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.repository import KeyRepository
from tollgate.auth.keys.service import utcnow
from tollgate.common.migrations import alembic_config


def _key() -> str:
    return f"tg_bootstrap_{uuid.uuid4().hex}"


async def _bootstrap(sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher, key: str) -> list[int]:
    async with sessions.begin() as session:
        changes = await ensure_bootstrap_admin(session, hasher, key, utcnow())
    return [c.key_id for c in changes]


async def _by_hash(sessions: async_sessionmaker[AsyncSession], key_hash: str) -> ApiKey | None:
    async with sessions() as session:
        return await KeyRepository(session).get_by_hash(key_hash)


async def test_bootstrap_is_idempotent_and_lives_in_the_system_org(
    sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher, caplog: pytest.LogCaptureFixture
) -> None:
    key = _key()
    with caplog.at_level(logging.DEBUG):
        await _bootstrap(sessions, hasher, key)
        await _bootstrap(sessions, hasher, key)
        # replicas starting together
        await asyncio.gather(*(_bootstrap(sessions, hasher, key) for _ in range(3)))
    assert all(key not in r.getMessage() and key not in str(r.__dict__) for r in caplog.records)
    async with sessions() as session:
        stmt = select(ApiKey).where(ApiKey.key_hash == hasher.hash(key))
        rows = (await session.execute(stmt)).scalars().all()
        org = await session.get(Organization, SYSTEM_ORG_ID)
    assert len(rows) == 1
    assert (rows[0].name, rows[0].role, rows[0].org_id, rows[0].revoked_at) == (
        BOOTSTRAP_KEY_NAME,
        "admin",
        SYSTEM_ORG_ID,
        None,
    )
    assert org is not None and not org.personal


async def test_rotating_the_key_revokes_the_previous_one(
    sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher
) -> None:
    old, new = _key(), _key()
    await _bootstrap(sessions, hasher, old)
    old_row = await _by_hash(sessions, hasher.hash(old))
    assert old_row is not None
    assert old_row.id in await _bootstrap(sessions, hasher, new)
    assert (await _by_hash(sessions, hasher.hash(old))).revoked_at is not None  # type: ignore[union-attr]
    assert (await _by_hash(sessions, hasher.hash(new))).revoked_at is None  # type: ignore[union-attr]


async def test_a_revoked_bootstrap_key_is_not_resurrected_by_a_restart(
    sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher
) -> None:
    key = _key()
    await _bootstrap(sessions, hasher, key)
    async with sessions.begin() as session:
        row = await KeyRepository(session).get_by_hash(hasher.hash(key))
        assert row is not None
        row.revoked_at = utcnow()
    await _bootstrap(sessions, hasher, key)
    assert (await _by_hash(sessions, hasher.hash(key))).revoked_at is not None  # type: ignore[union-attr]


async def test_last_used_never_moves_backwards(
    sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher
) -> None:
    key = _key()
    await _bootstrap(sessions, hasher, key)
    row = await _by_hash(sessions, hasher.hash(key))
    assert row is not None
    later = utcnow()
    async with sessions.begin() as session:
        await KeyRepository(session).mark_used({row.id: later})
    async with sessions.begin() as session:
        await KeyRepository(session).mark_used({row.id: later - timedelta(minutes=5)})
    assert (await _by_hash(sessions, hasher.hash(key))).last_used_at == later  # type: ignore[union-attr]


async def test_models_match_the_migrations(database_url: str) -> None:
    # `alembic check`: fails when the ORM and the migrated schema have drifted apart
    await asyncio.to_thread(command.check, alembic_config(str(ALEMBIC_INI), database_url))
