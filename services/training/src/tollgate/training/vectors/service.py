"""Vector collections' rules: per-organisation collections (another organisation's is 404), point
writes stamped with the collection's next revision, and the search plan:

- no filters: the ANN index's top_k;
- filters that at most `exact_limit` points meet: prefiltering, exact cosine over those points
  (correct for any selectivity, never misses a match the graph would skip);
- broader filters: the ANN index oversampled by the filter's selectivity, post-filtered in SQL,
  widening the candidate set until top_k pass or `max_candidates` is reached, then exact.
The service never commits (the route's session does)."""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tollgate.common.errors import InvalidRequest, NotFound
from tollgate.training.errors import Conflict
from tollgate.training.vectors.ann import AnnIndex, Hits, exact_top
from tollgate.training.vectors.filters import Condition, parse_filters
from tollgate.training.vectors.indexes import IndexCache
from tollgate.training.vectors.models import VectorCollection
from tollgate.training.vectors.repository import PointRow, VectorRepository
from tollgate.training.vectors.schemas import (
    MAX_METADATA_BYTES,
    CollectionCreate,
    SearchRequest,
    UpsertRequest,
)


@dataclass(frozen=True, slots=True)
class Match:
    point: PointRow
    score: float


@dataclass(frozen=True, slots=True)
class SearchResult:
    matches: list[Match]
    plan: str  # "ann" | "ann+filter" | "exact"


def _pack(values: Sequence[float]) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


class VectorService:
    def __init__(self, indexes: IndexCache, *, exact_limit: int = 2048, max_candidates: int = 8192) -> None:
        self.indexes = indexes
        self.exact_limit = exact_limit
        self.max_candidates = max_candidates

    # ---- collections -------------------------------------------------------------------
    async def create(self, repo: VectorRepository, org_id: str, body: CollectionCreate) -> VectorCollection:
        collection = VectorCollection(
            id=f"vc_{secrets.token_hex(12)}",
            org_id=org_id,
            name=body.name,
            dimension=body.dimension,
            metric=body.metric,
            description=body.description,
        )
        if not await repo.add_collection(collection):
            raise Conflict(f"A collection named '{body.name}' already exists.", param="name")
        self.indexes.created(collection.id, collection.dimension)  # empty: ready without opening
        return await self.get(repo, org_id, body.name)

    async def get(
        self, repo: VectorRepository, org_id: str, name: str, *, lock: bool = False
    ) -> VectorCollection:
        collection = await repo.collection(org_id, name, lock=lock)
        if collection is None:
            raise NotFound(f"No collection named '{name}'.", param="collection")
        return collection

    async def delete(self, repo: VectorRepository, org_id: str, name: str) -> str:
        collection = await self.get(repo, org_id, name, lock=True)
        await repo.drop_collection(collection.id)
        return collection.id

    # ---- points ------------------------------------------------------------------------
    async def upsert(self, repo: VectorRepository, org_id: str, name: str, body: UpsertRequest) -> int:
        collection = await self.get(repo, org_id, name)
        latest: dict[str, tuple[str, bytes, dict[str, Any]]] = {}
        for i, vector in enumerate(body.vectors):
            if len(vector.values) != collection.dimension:
                raise InvalidRequest(
                    f"vectors[{i}] has {len(vector.values)} values; the collection's dimension is "
                    f"{collection.dimension}.",
                    param=f"vectors.{i}.values",
                )
            if len(json.dumps(vector.metadata)) > MAX_METADATA_BYTES:
                raise InvalidRequest(
                    f"vectors[{i}].metadata is over {MAX_METADATA_BYTES} bytes.",
                    param=f"vectors.{i}.metadata",
                )
            latest[vector.id] = (vector.id, _pack(vector.values), vector.metadata)  # last one wins
        seq = await repo.next_revision(collection.id)
        existing = await repo.live_ids(collection.id, list(latest))
        await repo.upsert(collection.id, seq, list(latest.values()))
        await repo.add_to_count(collection.id, len(latest) - len(existing))
        return len(latest)

    async def delete_points(self, repo: VectorRepository, org_id: str, name: str, ids: Sequence[str]) -> int:
        collection = await self.get(repo, org_id, name)
        seq = await repo.next_revision(collection.id)
        removed = await repo.tombstone(collection.id, seq, sorted(set(ids)))
        await repo.add_to_count(collection.id, -removed)
        return removed

    # ---- search ------------------------------------------------------------------------
    async def search(self, repo: VectorRepository, org_id: str, body: SearchRequest) -> SearchResult:
        conditions = parse_filters(body.filters)
        collection = await self.get(repo, org_id, body.collection)
        if len(body.query_vector) != collection.dimension:
            raise InvalidRequest(
                f"query_vector has {len(body.query_vector)} values; the collection's dimension is "
                f"{collection.dimension}.",
                param="query_vector",
            )
        query = np.asarray(body.query_vector, dtype=np.float32)
        started = time.perf_counter()
        hits, plan = await self._plan(repo, collection, query, body.top_k, conditions)
        self.indexes.metrics.search_seconds.labels(plan).observe(time.perf_counter() - started)
        keep = [
            (int(k), float(s))
            for k, s in zip(hits.keys, hits.similarities, strict=True)
            if s >= body.similarity_threshold
        ][: body.top_k]
        rows = await repo.points(collection.id, [k for k, _ in keep], with_vectors=body.include_values)
        return SearchResult([Match(rows[k], s) for k, s in keep if k in rows], plan)

    async def _plan(
        self,
        repo: VectorRepository,
        collection: VectorCollection,
        query: np.ndarray,
        top_k: int,
        conditions: list[Condition],
    ) -> tuple[Hits, str]:
        if not conditions:
            hits = await self._ann(repo, collection, query, top_k)
            if hits is None:  # the index is still opening: exact over PostgreSQL
                return await self._exact(repo, collection, query, top_k, conditions), "exact"
            return hits, "ann"
        matching = await repo.count_matching(collection.id, conditions, self.exact_limit)
        if matching <= self.exact_limit:
            return await self._exact(repo, collection, query, top_k, conditions), "exact"
        # oversample by the filter's selectivity (at least the cap's share of the collection)
        total = max(collection.vector_count, matching)
        wanted = min(self.max_candidates, max(4 * top_k, math.ceil(2 * top_k * total / matching)))
        while True:
            found = await self._ann(repo, collection, query, wanted)
            if found is None:
                return await self._exact(repo, collection, query, top_k, conditions), "exact"
            hits = found
            passing = await repo.keys_matching(collection.id, [int(k) for k in hits.keys], conditions)
            mask = np.asarray([int(k) in passing for k in hits.keys], dtype=bool)
            if mask.sum() >= top_k or wanted >= min(self.max_candidates, total):
                break
            wanted = min(self.max_candidates, wanted * 4)
        if mask.sum() >= top_k or wanted >= total:
            return Hits(hits.keys[mask], hits.similarities[mask]), "ann+filter"
        return await self._exact(repo, collection, query, top_k, conditions), "exact"

    async def _ann(
        self, repo: VectorRepository, collection: VectorCollection, query: np.ndarray, count: int
    ) -> Hits | None:
        def run(ann: AnnIndex) -> Hits:
            return ann.search(query, count)

        return await self.indexes.search(repo, collection.id, collection.dimension, collection.revision, run)

    async def _exact(
        self,
        repo: VectorRepository,
        collection: VectorCollection,
        query: np.ndarray,
        top_k: int,
        conditions: list[Condition],
    ) -> Hits:
        rows = await repo.matching_vectors(collection.id, conditions)
        if not rows:
            return Hits(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float32))
        keys = np.asarray([k for k, _ in rows], dtype=np.uint64)
        blob = b"".join(v for _, v in rows)

        def run() -> Hits:
            vectors = np.frombuffer(blob, dtype="<f4").reshape(len(rows), collection.dimension)
            return exact_top(query, keys, vectors, top_k)

        return await asyncio.to_thread(run)
