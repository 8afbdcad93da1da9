"""Auth test fixtures. Database tests run on the local dev PostgreSQL (AUTH_TEST_ADMIN_URL, default
127.0.0.1:25532): each session creates `scratch_auth_<random>`, migrates it to head, drops it at the end.
Login limits use the test profile's Redis (AUTH_TEST_REDIS_URL, default 127.0.0.1:26479), each test
under its own key prefix."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest
from auth_testkit import RecordingEvents
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.app import build_app
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.last_used import LastUsedRecorder
from tollgate.auth.keys.service import KeyService
from tollgate.auth.sessions.passwords import Passwords, argon2id
from tollgate.auth.sessions.ratelimit import LoginLimiter
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.sessions.tokens import TokenIssuer
from tollgate.auth.web import AuthRuntime
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.migrations import upgrade_to_head

ADMIN_DSN = os.environ.get("AUTH_TEST_ADMIN_URL", "postgresql://tollgate@127.0.0.1:25532/postgres")
ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TEST_PEPPER = "test-pepper"
REDIS_URL = os.environ.get("AUTH_TEST_REDIS_URL", "redis://127.0.0.1:26479/0")
TEST_JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    name = f"scratch_auth_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(ADMIN_DSN, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    try:
        await asyncio.to_thread(upgrade_to_head, str(ALEMBIC_INI), url)
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


@pytest.fixture(scope="session")
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
def limiter(redis: Redis) -> LoginLimiter:
    return LoginLimiter(redis, prefix=f"test-login:{uuid.uuid4().hex}")


@pytest.fixture(scope="session")
def passwords() -> Passwords:
    # Cheap parameters: the tests check behaviour, not argon2's cost.
    return Passwords(argon2id(time_cost=1, memory_kib=1024, parallelism=1))


@pytest.fixture
def tokens() -> TokenIssuer:
    return TokenIssuer(TEST_JWT_SECRET, access_ttl_s=900, refresh_ttl_s=30 * 24 * 3600)


@pytest.fixture
def identity(
    passwords: Passwords, tokens: TokenIssuer, limiter: LoginLimiter, key_service: KeyService
) -> SessionService:
    return SessionService(passwords, tokens, limiter, key_service)


@pytest.fixture
async def auth_http(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    identity: SessionService,
) -> AsyncIterator[httpx.AsyncClient]:
    """The whole auth app over ASGI (no credentials set); the client's address is 127.0.0.1."""
    app = build_app(
        AuthRuntime(sessions, key_service, RecordingEvents(), identity), engine, CollectorRegistry()
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth") as client:
        yield client
