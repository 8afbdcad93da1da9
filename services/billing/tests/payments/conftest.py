"""Fixtures of the payment route tests: two fresh organisations and the app serving them
(payment_helpers.payment_client: fake auth table, the test payment provider)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from billing_helpers import new_org
from payment_helpers import payment_client
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.billing.holds.store import HoldStore


@pytest.fixture
def org() -> str:
    return new_org()


@pytest.fixture
def other_org() -> str:
    return new_org()


@pytest.fixture
def registry() -> CollectorRegistry:
    """The client's metrics (served on the metrics port in production, runner.serve)."""
    return CollectorRegistry()


@pytest.fixture
async def client(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis,
    store: HoldStore,
    org: str,
    other_org: str,
    registry: CollectorRegistry,
) -> AsyncIterator[httpx.AsyncClient]:
    async with payment_client(engine, sessions, redis, store, org, other_org, registry=registry) as c:
        yield c
