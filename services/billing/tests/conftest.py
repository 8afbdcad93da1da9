"""Fixtures on the real local infrastructure: a scratch PostgreSQL database migrated to head once
per session, and a random Redis key namespace per test (cleaned up afterwards)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.billing.holds.store import HoldStore
from tollgate.billing.metrics import BillingMetrics
from tollgate.billing.migrate import DEFAULT_ALEMBIC_INI
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.migrations import upgrade_to_head

PG_ADMIN_DSN = os.environ.get(
    "BILLING_TEST_PG_DSN", "host=127.0.0.1 port=25532 user=tollgate dbname=postgres"
)
PG_URL_TEMPLATE = os.environ.get(
    "BILLING_TEST_PG_URL_TEMPLATE", "postgresql+psycopg://tollgate@127.0.0.1:25532/{db}"
)
REDIS_URL = os.environ.get("BILLING_TEST_REDIS_URL", "redis://127.0.0.1:26479/0")


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"scratch_billing_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL_TEMPLATE.format(db=name)
    await asyncio.to_thread(upgrade_to_head, DEFAULT_ALEMBIC_INI, url)
    yield url
    async with await psycopg.AsyncConnection.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    prefix = f"test-billing-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def metrics() -> BillingMetrics:
    return BillingMetrics(CollectorRegistry())


@pytest.fixture
def store(redis: Redis, prefix: str) -> HoldStore:
    return HoldStore(redis, prefix=prefix, wallet_ttl_seconds=3600)
