"""Fixtures for analytics tests: a real scratch PostgreSQL database, migrated once per session.

The database tests use the local dev PostgreSQL (ANALYTICS_TEST_ADMIN_URL, default 127.0.0.1:25532):
each session creates its own `scratch_analytics_<random>` database, migrates it and drops it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.migrations import migrate

ADMIN_DSN = os.environ.get("ANALYTICS_TEST_ADMIN_URL", "postgresql://tollgate@127.0.0.1:25532/postgres")
ALEMBIC_INI = str(Path(__file__).resolve().parents[1] / "alembic.ini")


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"scratch_analytics_{uuid.uuid4().hex[:10]}"
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
    """A fresh schema state per test: the tables are emptied first (tests commit, like the consumer)."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql(
            "TRUNCATE usage_events, usage_daily, usage_hourly, usage_key_hourly, usage_latency_daily"
        )
    yield make_sessionmaker(engine)
