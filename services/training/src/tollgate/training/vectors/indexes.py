"""The loaded ANN indexes of this process, one per collection, each kept in step with PostgreSQL.

Before a search the index applies every row stamped after its own `seq` up to the collection's
revision (read in the same request), so a replica sees the writes another replica made. Indexes are
saved to the data volume by `flush` (periodically and at shutdown); a process that starts again
loads the file and replays only the rows written since (docs/vectors.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tollgate.training.vectors.ann import AnnIndex, Hits
from tollgate.training.vectors.repository import Change, VectorRepository

log = logging.getLogger(__name__)


class IndexMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.loaded = Gauge("tollgate_vector_indexes_loaded", "ANN indexes held in memory", registry=registry)
        self.applied = Counter(
            "tollgate_vector_index_rows_applied_total",
            "Rows applied to ANN indexes",
            ["kind"],
            registry=registry,
        )
        self.saves = Counter(
            "tollgate_vector_index_saves_total", "ANN index files written", registry=registry
        )
        self.search_seconds = Histogram(
            "tollgate_vector_search_seconds",
            "Vector search time in the training API",
            ["plan"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=registry,
        )


@dataclass
class _Entry:
    ann: AnnIndex
    saved_seq: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class IndexCache:
    def __init__(self, directory: Path, metrics: IndexMetrics, threads: int = 0) -> None:
        self.directory = directory
        self.metrics = metrics
        self.threads = threads
        self._entries: dict[str, _Entry] = {}
        self._opening = asyncio.Lock()

    def path(self, collection_id: str) -> Path:
        return self.directory / f"{collection_id}.usearch"

    async def _entry(self, collection_id: str, dimension: int, revision: int) -> _Entry:
        entry = self._entries.get(collection_id)
        if entry is not None:
            return entry
        async with self._opening:
            entry = self._entries.get(collection_id)
            if entry is None:
                ann = await asyncio.to_thread(AnnIndex.load, self.path(collection_id), dimension)
                if ann is None or ann.seq > revision:
                    # none saved, unreadable, or ahead of the database (restored from a backup)
                    ann = AnnIndex(dimension)
                entry = _Entry(ann, saved_seq=ann.seq)
                self._entries[collection_id] = entry
                self.metrics.loaded.set(len(self._entries))
        return entry

    async def search(
        self,
        repo: VectorRepository,
        collection_id: str,
        dimension: int,
        revision: int,
        run: Callable[[AnnIndex], Hits],
    ) -> Hits:
        """Brings the index up to `revision`, then runs `run(index)` in a worker thread."""
        entry = await self._entry(collection_id, dimension, revision)
        async with entry.lock:
            if entry.ann.seq < revision:
                await self._catch_up(repo, collection_id, entry.ann, revision)
            return await asyncio.to_thread(run, entry.ann)

    async def _catch_up(
        self, repo: VectorRepository, collection_id: str, ann: AnnIndex, revision: int
    ) -> None:
        async for page in repo.changes(collection_id, ann.seq, revision):
            await asyncio.to_thread(self._apply, ann, page)
        ann.seq = revision

    def _apply(self, ann: AnnIndex, page: list[Change]) -> None:
        gone = np.asarray([c.key for c in page if c.vector is None], dtype=np.uint64)
        live = [c for c in page if c.vector is not None]
        ann.remove(gone)
        if live:
            keys = np.asarray([c.key for c in live], dtype=np.uint64)
            vectors = np.frombuffer(b"".join(c.vector for c in live if c.vector), dtype="<f4")
            ann.upsert(keys, vectors.reshape(len(live), ann.dimension), threads=self.threads)
        self.metrics.applied.labels("upsert").inc(len(live))
        self.metrics.applied.labels("delete").inc(len(gone))

    async def forget(self, collection_id: str) -> None:
        """A deleted collection: drop it from memory and the volume."""
        entry = self._entries.pop(collection_id, None)
        self.metrics.loaded.set(len(self._entries))
        if entry is not None:
            async with entry.lock:
                await asyncio.to_thread(AnnIndex.discard, self.path(collection_id))
        else:
            await asyncio.to_thread(AnnIndex.discard, self.path(collection_id))

    async def flush(self) -> int:
        """Saves every index that applied rows since it was last saved; returns how many."""
        saved = 0
        for collection_id, entry in list(self._entries.items()):
            if entry.ann.seq <= entry.saved_seq:
                continue
            async with entry.lock:
                if self._entries.get(collection_id) is not entry:
                    continue  # deleted meanwhile
                seq = entry.ann.seq
                await asyncio.to_thread(entry.ann.save, self.path(collection_id))
                entry.saved_seq = seq
            saved += 1
            self.metrics.saves.inc()
        return saved

    async def run_flusher(self, interval_s: float, stop: asyncio.Event | None = None) -> None:
        """Background task: flush every `interval_s` until cancelled (then one last flush)."""
        try:
            while stop is None or not stop.is_set():
                await asyncio.sleep(interval_s)
                try:
                    await self.flush()
                except OSError:
                    log.exception("saving vector indexes failed; they stay rebuildable from PostgreSQL")
        finally:
            await self.flush()
