"""Fixtures of the training unit tests: a scratch PostgreSQL database migrated once per session
(the test profile's server, 127.0.0.1:25532), emptied before each test that uses it, and
the API on it with fake auth and billing (`api`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from training_api_testkit import Api, open_api

from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.migrations import migrate

ADMIN_DSN = os.environ.get("TRAINING_TEST_ADMIN_URL", "postgresql://tollgate@127.0.0.1:25532/postgres")
ALEMBIC_INI = str(Path(__file__).resolve().parents[1] / "alembic.ini")
TABLES = (
    "outbox, training_checkpoints, training_job_events, training_jobs, training_files, registry_models,"
    " vector_points, vector_collections"
)


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"scratch_training_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    await migrate(ALEMBIC_INI, url)
    yield url
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url, pool_size=4)
    yield eng
    await eng.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {TABLES}")
    yield make_sessionmaker(engine)


@pytest.fixture
async def api(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Api]:
    async with open_api(sessions, tmp_path) as opened:
        yield opened
