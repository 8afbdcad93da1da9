"""Fine-tuned models in the gateway: the catalog learns them from training.v1 (on their base's
upstream and prices, idempotently) and forgets them on deletion; only their organisation sees
and calls them; the training routes are forwarded to the training service."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from scratch_db import scratch_database

from tollgate.common.auth_client import Principal
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.errors import NotFound
from tollgate.contracts.v1 import training_pb2
from tollgate.gateway.catalog.deployments import DeploymentConsumer
from tollgate.gateway.catalog.repository import ModelRepository
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.snapshot import CatalogSnapshot, UpstreamPool
from tollgate.gateway.principals.grants import (
    ModelNotAllowed,
    ensure_model_allowed,
    fine_tuned_owner,
    may_call,
)
from tollgate.gateway.proxy.forwarder import route_for

NAME = "ft:base-m:org-1:bot:ftjob-0123456789abcdef01234567"


def who(org: str, granted: frozenset[str] | None = None) -> Principal:
    return Principal(
        1,
        org,
        "u",
        "user",
        0,
        ("read", "write"),
        "tg",
        0,
        0,
        models_restricted=granted is not None,
        granted_models=granted or frozenset(),
    )


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/v1/files", "training"),
        ("/v1/files/file-1/content", "training"),
        ("/v1/fine_tuning/jobs", "training"),
        ("/v1/fine_tuning/jobs/ftjob-1/events", "training"),
        ("/models", "training"),
        ("/models/model-1", "training"),
        ("/training/jobs/x/stop", "training"),
        ("/v1/filesystem", None),
    ],
)
def test_training_routes_are_forwarded(path: str, service: str | None) -> None:
    assert route_for(path) == service


def test_a_fine_tuned_model_belongs_to_its_organisation() -> None:
    assert fine_tuned_owner(NAME) == "org-1"
    assert fine_tuned_owner("ft:base-m:org-1::ftjob-1") == "org-1"
    assert fine_tuned_owner("gemma-3-270m") is None
    assert may_call(who("org-1"), NAME) and not may_call(who("org-2"), NAME)
    ensure_model_allowed(who("org-1"), NAME)
    with pytest.raises(NotFound):
        ensure_model_allowed(who("org-2"), NAME)
    with pytest.raises(ModelNotAllowed):  # the key's grants still apply to its own models
        ensure_model_allowed(who("org-1", frozenset({"other"})), NAME)


@pytest.fixture
async def catalog() -> AsyncIterator[tuple[DeploymentConsumer, CatalogSnapshot, object]]:
    with scratch_database("scratch_gateway_ft") as url:
        engine = make_engine(url, pool_size=2)
        sessions = make_sessionmaker(engine)
        box = SecretBox("test")
        pool = UpstreamPool(lambda _: httpx.AsyncClient())
        snapshot = CatalogSnapshot(sessions, box, pool)
        async with sessions.begin() as session:
            await ModelRepository(session).add(
                name="base-m",
                provider="openai-compatible",
                base_url="http://llama:8091/v1",
                upstream_model="base-m",
                api_key_encrypted=box.encrypt("sk-x"),
                price_in_micros=100_000,
                price_out_micros=200_000,
            )
        await snapshot.reload()
        yield DeploymentConsumer(lambda: None, sessions, snapshot), snapshot, sessions  # type: ignore[arg-type, return-value]
        await pool.close()
        await engine.dispose()


def deployed(base: str = "base-m") -> bytes:
    return training_pb2.ModelDeployed(
        event_id="m1:deployed",
        model_id="m1",
        name=NAME,
        org_id="org-1",
        base_model=base,
        upstream_model="ftjob-0123456789abcdef01234567",
        job_id="ftjob-0123456789abcdef01234567",
    ).SerializeToString()


async def test_deployed_then_deleted(catalog: tuple[DeploymentConsumer, CatalogSnapshot, object]) -> None:
    consumer, snapshot, _ = catalog
    assert await consumer.apply("ModelDeployed", deployed())
    assert await consumer.apply("ModelDeployed", deployed())  # a redelivery updates the same row
    await snapshot.reload()
    entry = snapshot.get(NAME)
    assert entry is not None and len(snapshot) == 2
    assert entry.upstream_model == "ftjob-0123456789abcdef01234567" and entry.api_key == "sk-x"
    assert (entry.price_in_micros, entry.price_out_micros) == (100_000, 200_000)  # the base's prices
    assert entry.chat_url == "http://llama:8091/v1/chat/completions"
    gone = training_pb2.ModelDeleted(event_id="m1:deleted", model_id="m1", name=NAME, org_id="org-1")
    assert await consumer.apply("ModelDeleted", gone.SerializeToString())
    assert not await consumer.apply("ModelDeleted", gone.SerializeToString())  # already gone
    await snapshot.reload()
    assert snapshot.get(NAME) is None and len(snapshot) == 1


async def test_unknown_base_and_other_records_change_nothing(
    catalog: tuple[DeploymentConsumer, CatalogSnapshot, object],
) -> None:
    consumer, snapshot, _ = catalog
    assert not await consumer.apply("ModelDeployed", deployed(base="missing"))
    assert not await consumer.apply("TrainingProgress", b"\x08\x01")
    assert not await consumer.apply("ModelDeployed", b"\xff\xff")
    await snapshot.reload()
    assert len(snapshot) == 1
