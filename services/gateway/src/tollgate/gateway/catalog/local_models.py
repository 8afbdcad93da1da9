"""`python -m tollgate.gateway.catalog.local_models`: the local model servers of a deployment (the Gemma
llama.cpp server and the all-MiniLM-L6-v2 embedding server, deploy/k8s/base/local-models.yaml) put
into the catalog, as `make run` does through the admin API (tools/devstack local_model.py).

GATEWAY_LOCAL_CHAT_MODEL_URL and GATEWAY_LOCAL_EMBEDDING_MODEL_URL name the servers' `/v1` base URLs
(empty: that server is not registered). A model missing from the catalog is added with the local
defaults below; one already there keeps what an operator set (prices, group) and only follows its
server's URL. Idempotent: the `register-local-models` Job re-runs it on every rollout."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.logging import configure_logging
from tollgate.gateway.catalog.repository import ModelRepository
from tollgate.gateway.catalog.schemas import ModelSaveIn
from tollgate.gateway.catalog.secrets import secret_box
from tollgate.gateway.catalog.service import CatalogService
from tollgate.gateway.config import GatewaySettings

log = logging.getLogger("tollgate.gateway")


@dataclass(frozen=True)
class LocalModel:
    name: str
    price_in: Decimal
    price_out: Decimal
    price_embedding: Decimal | None = None


# The names the servers answer to (--model_alias) and `make run`'s prices (credits per 1M tokens).
CHAT = LocalModel("gemma-3-270m", Decimal("0.1"), Decimal("0.2"))
EMBEDDING = LocalModel("all-minilm-l6-v2", Decimal("0.02"), Decimal(0), Decimal("0.02"))


def wanted(settings: GatewaySettings) -> list[tuple[LocalModel, str]]:
    pairs = [(CHAT, settings.local_chat_model_url), (EMBEDDING, settings.local_embedding_model_url)]
    return [(model, url.rstrip("/")) for model, url in pairs if url.strip()]


async def register(
    sessions: async_sessionmaker[AsyncSession],
    catalog_of: Callable[[ModelRepository], CatalogService],
    models: list[tuple[LocalModel, str]],
) -> dict[str, str]:
    """What happened to each model: added, moved (its URL followed the server) or unchanged."""
    outcome: dict[str, str] = {}
    for model, url in models:
        async with sessions.begin() as session:
            repo = ModelRepository(session)
            existing = await repo.get_live_by_name(model.name)
            if existing is None:
                body = ModelSaveIn(
                    name=model.name,
                    provider="openai-compatible",
                    config=json.dumps({"base_url": url, "model": model.name}),
                    price_in=model.price_in,
                    price_out=model.price_out,
                    price_embedding=model.price_embedding,
                )
                await catalog_of(repo).save(body)
                outcome[model.name] = "added"
            elif existing.base_url.rstrip("/") != url:
                await repo.update(existing, base_url=url)
                outcome[model.name] = "moved"
            else:
                outcome[model.name] = "unchanged"
    return outcome


async def run(settings: GatewaySettings) -> dict[str, str]:
    engine = make_engine(settings.database_url, pool_size=1)
    box = secret_box(settings)
    try:
        return await register(
            make_sessionmaker(engine),
            lambda repo: CatalogService(repo, box, settings.default_max_tokens),
            wanted(settings),
        )
    finally:
        await engine.dispose()


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    outcome = asyncio.run(run(settings))
    log.info("local models registered", extra={"models": outcome})


if __name__ == "__main__":
    main()
