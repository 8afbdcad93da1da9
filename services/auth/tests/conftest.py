"""Auth test fixtures. Database tests run on the local dev PostgreSQL (AUTH_TEST_ADMIN_URL, default
127.0.0.1:55532): each session creates `scratch_auth_<random>`, migrates it to head, drops it at the end."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.database import migrate_to_head
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.last_used import LastUsedRecorder
from tollgate.auth.keys.service import KeyService
from tollgate.common.db import make_engine, make_sessionmaker

ADMIN_DSN = os.environ.get("AUTH_TEST_ADMIN_URL", "postgresql://tollgate@127.0.0.1:55532/postgres")
ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TEST_PEPPER = "test-pepper"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"scratch_auth_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    try:
        await asyncio.to_thread(migrate_to_head, ALEMBIC_INI, url)
        yield url
    finally:
        async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, pool_size=4)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
def hasher() -> KeyHasher:
    return KeyHasher(TEST_PEPPER)


@pytest.fixture
def last_used(sessions: async_sessionmaker[AsyncSession]) -> LastUsedRecorder:
    return LastUsedRecorder(sessions, interval_s=3600)


@pytest.fixture
def key_service(hasher: KeyHasher, last_used: LastUsedRecorder) -> KeyService:
    return KeyService(hasher, last_used)
