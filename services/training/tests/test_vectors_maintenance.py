"""The vector indexes' background work on a real PostgreSQL (vectors/maintenance.py): indexes opened
at startup so no search waits on a rebuild, a search on an index still opening answered exactly, and
compaction rebuilding an index full of tombstones and swapping it in with every write kept."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from training_api_testkit import Api

from tollgate.training.vectors.ann import AnnIndex
from tollgate.training.vectors.indexes import IndexCache, IndexMetrics
from tollgate.training.vectors.maintenance import IndexMaintenance, compaction_due
from tollgate.training.vectors.repository import VectorRepository
from tollgate.training.vectors.schemas import SearchRequest
from tollgate.training.vectors.service import VectorService

A = {"Authorization": "Bearer key-org_a"}
DIM = 8


def _points(n: int, start: int = 0) -> list[dict[str, object]]:
    rows = np.random.default_rng(start + 11).normal(size=(n, DIM)).astype(np.float32)
    return [{"id": f"p{start + i}", "values": rows[i].tolist(), "metadata": {}} for i in range(n)]


async def _collection(client: httpx.AsyncClient, points: list[dict[str, object]]) -> None:
    created = await client.post("/vectors/collections", headers=A, json={"name": "c1", "dimension": DIM})
    assert created.status_code == 201, created.text
    resp = await client.post("/vectors/collections/c1/upsert", headers=A, json={"vectors": points})
    assert resp.status_code == 200, resp.text


async def _collection_id(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        collection = await VectorRepository(session).collection("org_a", "c1")
    assert collection is not None
    return collection.id


async def _top(
    service: VectorService, sessions: async_sessionmaker[AsyncSession], query: object, top_k: int = 1
) -> tuple[list[str], str]:
    async with sessions() as session:
        result = await service.search(
            VectorRepository(session),
            "org_a",
            SearchRequest(collection="c1", query_vector=query, top_k=top_k),
        )
    return [m.point.point_id for m in result.matches], result.plan


def test_compaction_is_due_past_the_ratio_and_the_minimum() -> None:
    assert compaction_due(300, 1000, 0.25, 100)
    assert not compaction_due(250, 1000, 0.25, 100)  # not more than the ratio
    assert not compaction_due(50, 10, 0.25, 100)  # under the minimum, however high the ratio
    index = AnnIndex(DIM)
    keys = np.arange(1, 41, dtype=np.uint64)
    index.upsert(keys, np.random.default_rng(1).normal(size=(40, DIM)))
    index.remove(keys[:30])
    assert (index.tombstones(), len(index)) == (30, 10)


async def test_indexes_open_at_startup_and_a_cold_one_is_answered_exactly(
    api: Api, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    points = _points(120)
    await _collection(api.client, points)
    collection_id = await _collection_id(sessions)

    # a restarted process: warmed before any search, which then never opens or rebuilds
    metrics = IndexMetrics(CollectorRegistry())
    warm = IndexCache(tmp_path / "warm", metrics, sessions, wait_s=0)
    assert await IndexMaintenance(warm).warm() == 1 and warm.is_ready(collection_id)
    assert metrics.opened.labels("rebuild")._value.get() == 1
    assert await _top(VectorService(warm), sessions, points[5]["values"]) == (["p5"], "ann")
    assert metrics.fallbacks._value.get() == 0
    assert await warm.flush() == 1

    # no wait allowed and not opened yet: exact search over PostgreSQL, the index opens meanwhile
    cold_metrics = IndexMetrics(CollectorRegistry())
    cold = IndexCache(tmp_path / "warm", cold_metrics, sessions, wait_s=0)
    service = VectorService(cold)
    assert await _top(service, sessions, points[7]["values"]) == (["p7"], "exact")
    assert cold_metrics.fallbacks._value.get() == 1
    await cold.open(collection_id, DIM)  # the background open the search started
    assert cold_metrics.opened.labels("file")._value.get() == 1  # from the saved file
    assert await _top(service, sessions, points[7]["values"]) == (["p7"], "ann")


async def test_compaction_drops_tombstones_and_keeps_every_write(
    api: Api, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    points = _points(200)
    await _collection(api.client, points)
    collection_id = await _collection_id(sessions)
    metrics = IndexMetrics(CollectorRegistry())
    cache = IndexCache(tmp_path / "ix", metrics, sessions)
    service = VectorService(cache)
    assert await _top(service, sessions, points[0]["values"]) == (["p0"], "ann")

    gone = [f"p{i}" for i in range(0, 200, 2)]  # half deleted, a few replaced
    deleted = await api.client.post("/vectors/collections/c1/delete", headers=A, json={"ids": gone})
    assert deleted.json()["deleted_count"] == 100
    replaced = [{**p, "values": _points(1, 900 + i)[0]["values"]} for i, p in enumerate(points[1:20:2])]
    resp = await api.client.post("/vectors/collections/c1/upsert", headers=A, json={"vectors": replaced})
    assert resp.status_code == 200
    assert (await _top(service, sessions, points[0]["values"], top_k=5))[0][0] != "p0"  # caught up
    assert (await cache.tombstones())[collection_id][0] >= 100

    maintenance = IndexMaintenance(cache, ratio=0.25, min_tombstones=10)
    assert await maintenance.compact_due() == [collection_id]
    assert (await cache.tombstones())[collection_id] == (0, 100)
    assert metrics.compactions._value.get() == 1
    assert await maintenance.compact_due() == []  # nothing left to compact

    # the swapped-in index has every write: deleted ids never come back, replaced ones moved,
    # and a write after the compaction is applied on the next search as before
    ids, plan = await _top(service, sessions, points[0]["values"], top_k=100)
    assert plan == "ann" and not set(ids) & set(gone) and len(ids) == 100
    assert (await _top(service, sessions, replaced[3]["values"]))[0] == [replaced[3]["id"]]
    assert (await _top(service, sessions, points[1]["values"]))[0] != ["p1"]  # p1's old vector is gone
    later = _points(1, 5000)
    await api.client.post("/vectors/collections/c1/upsert", headers=A, json={"vectors": later})
    assert await _top(service, sessions, later[0]["values"]) == (["p5000"], "ann")

    # the next flush saves the compacted index, which loads without tombstones
    assert await cache.flush() == 1
    loaded = AnnIndex.load(cache.path(collection_id), DIM)
    assert loaded is not None and loaded.tombstones() == 0 and len(loaded) == 101
