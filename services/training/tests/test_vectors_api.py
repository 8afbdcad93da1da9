"""Vector collections through the training API on a real PostgreSQL: organisations apart, the
search plans (ANN, exact on a selective filter, ANN post-filtered on a broad one), and a second
process's index (another replica, or this one after a restart) catching up from the database."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from training_api_testkit import Api

from tollgate.training.vectors.indexes import IndexCache, IndexMetrics
from tollgate.training.vectors.repository import VectorRepository
from tollgate.training.vectors.schemas import SearchRequest
from tollgate.training.vectors.service import VectorService

A = {"Authorization": "Bearer key-org_a"}
B = {"Authorization": "Bearer key-org_b"}


def _points(n: int, dim: int = 8) -> list[dict[str, object]]:
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    return [
        {
            "id": f"p{i}",
            "values": rows[i].tolist(),
            "metadata": {"group": "rare" if i % 50 == 0 else "common", "n": i},
        }
        for i in range(n)
    ]


async def _setup(client: httpx.AsyncClient, n: int = 300) -> list[dict[str, object]]:
    created = await client.post("/vectors/collections", headers=A, json={"name": "c1", "dimension": 8})
    assert created.status_code == 201, created.text
    points = _points(n)
    resp = await client.post("/vectors/collections/c1/upsert", headers=A, json={"vectors": points})
    assert resp.status_code == 200, resp.text
    return points


async def test_plans_filters_and_isolation(api: Api) -> None:
    client = api.client
    points = await _setup(client)
    query = points[10]["values"]
    plain = (
        await client.post("/search/vector", headers=A, json={"collection": "c1", "query_vector": query})
    ).json()
    assert plain["plan"] == "ann" and plain["results"][0]["id"] == "p10"
    assert plain["results"][0]["score"] > 0.999
    rare = await client.post(
        "/search/vector",
        headers=A,
        json={"collection": "c1", "query_vector": query, "filters": {"group": "rare"}},
    )
    assert rare.json()["plan"] == "exact"
    assert {r["id"] for r in rare.json()["results"]} == {f"p{i}" for i in range(0, 300, 50)}
    ranged = await client.post(
        "/search/vector",
        headers=A,
        json={"collection": "c1", "query_vector": query, "top_k": 3, "filters": {"n": {"gte": 5, "lte": 15}}},
    )
    assert all(5 <= r["metadata"]["n"] <= 15 for r in ranged.json()["results"])
    assert ranged.json()["results"][0]["id"] == "p10"
    other = await client.post("/search/vector", headers=B, json={"collection": "c1", "query_vector": query})
    assert other.status_code == 404 and other.json()["error"]["code"] == "NOT_FOUND"


async def test_broad_filter_is_post_filtered_and_exact(
    api: Api, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    points = await _setup(api.client)
    # a service whose exact plan is off for all but tiny matches: the ANN + post-filter path
    service = VectorService(
        IndexCache(tmp_path / "ix", IndexMetrics(CollectorRegistry()), sessions), exact_limit=10
    )
    async with sessions() as session:
        result = await service.search(
            VectorRepository(session),
            "org_a",
            SearchRequest(
                collection="c1", query_vector=points[7]["values"], top_k=5, filters={"group": "common"}
            ),
        )
    assert result.plan == "ann+filter"
    assert len(result.matches) == 5 and result.matches[0].point.point_id == "p7"
    assert all(m.point.metadata["group"] == "common" for m in result.matches)


async def test_a_second_index_catches_up_and_a_saved_one_replays_writes(
    api: Api, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    points = await _setup(api.client, n=100)
    cache = IndexCache(tmp_path / "replica", IndexMetrics(CollectorRegistry()), sessions)
    replica = VectorService(cache)
    request = SearchRequest(collection="c1", query_vector=points[3]["values"], top_k=1)
    async with sessions() as session:
        assert (await replica.search(VectorRepository(session), "org_a", request)).matches[
            0
        ].point.point_id == "p3"
    assert await cache.flush() == 1
    # written through the API (another process): deleted on the replica's next search
    deleted = await api.client.post("/vectors/collections/c1/delete", headers=A, json={"ids": ["p3"]})
    assert deleted.json()["deleted_count"] == 1
    restarted = VectorService(IndexCache(tmp_path / "replica", IndexMetrics(CollectorRegistry()), sessions))
    async with sessions() as session:
        found = await restarted.search(VectorRepository(session), "org_a", request)
    assert found.matches[0].point.point_id != "p3"
