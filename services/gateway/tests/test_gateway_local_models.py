"""`python -m tollgate.gateway.catalog.local_models` on a scratch PostgreSQL (GATEWAY_TEST_ADMIN_URL, the
test profile's by default): the local model servers of deploy/k8s enter the catalog once; a re-run
changes nothing; a moved server is followed while an operator's prices are kept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest
from scratch_db import scratch_database
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.gateway.catalog import local_models
from tollgate.gateway.catalog.models import Model
from tollgate.gateway.config import GatewaySettings


@pytest.fixture
def settings() -> Iterator[GatewaySettings]:
    with scratch_database("scratch_gateway_local") as url:
        yield GatewaySettings(
            database_url=url,
            local_chat_model_url="http://llama:8091/v1",
            local_embedding_model_url="http://embeddings:8092/v1/",
        )


@pytest.fixture
async def sessions(settings: GatewaySettings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.database_url, pool_size=1)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def catalog(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Model]:
    async with sessions() as session:
        rows = (await session.execute(select(Model).where(Model.deleted_at.is_(None)))).scalars()
        return {m.name: m for m in rows}


async def test_registers_once_then_follows_a_moved_server_and_keeps_prices(
    settings: GatewaySettings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert await local_models.run(settings) == {"gemma-3-270m": "added", "all-minilm-l6-v2": "added"}
    models = await catalog(sessions)
    chat, embedding = models["gemma-3-270m"], models["all-minilm-l6-v2"]
    assert (chat.provider, chat.base_url, chat.upstream_model) == (
        "openai-compatible",
        "http://llama:8091/v1",
        "gemma-3-270m",
    )
    assert embedding.base_url == "http://embeddings:8092/v1"  # the trailing slash dropped
    assert embedding.price_embedding_micros is not None and embedding.price_embedding_micros > 0

    assert await local_models.run(settings) == {"gemma-3-270m": "unchanged", "all-minilm-l6-v2": "unchanged"}
    assert len(await catalog(sessions)) == 2

    async with sessions.begin() as session:  # an operator reprices the model through the admin API
        model = await session.get(Model, chat.id)
        assert model is not None
        model.price_in_micros = 777
    moved = settings.model_copy(update={"local_chat_model_url": "http://llama.models:8091/v1"})
    assert (await local_models.run(moved))["gemma-3-270m"] == "moved"
    chat = (await catalog(sessions))["gemma-3-270m"]
    assert chat.base_url == "http://llama.models:8091/v1" and chat.price_in_micros == 777


async def test_an_unset_url_registers_nothing(settings: GatewaySettings) -> None:
    none = settings.model_copy(update={"local_chat_model_url": "", "local_embedding_model_url": " "})
    assert local_models.wanted(none) == []
    assert await local_models.run(none) == {}
    assert local_models.CHAT.price_in == Decimal("0.1")
