"""The loaded ANN indexes of this process, one per collection, each kept in step with PostgreSQL.

Before a search the index applies every row stamped after its own `seq` up to the collection's
revision (read in the same request), so a replica sees the writes another replica made. Indexes are
saved to the data volume by `flush` (periodically and at shutdown); a process that starts again
loads the file and replays only the rows written since (docs/vectors.md).

Opening an index (loading its file and replaying, or a full rebuild from PostgreSQL) never runs
inside a request: it is a background task of its own, started at startup for every collection
(vectors/maintenance.py) or by the first search that finds the index missing. A search waits for
it at most `wait_s`, then is answered by exact search over PostgreSQL (`search` returns None).
Compaction rebuilds an index with many tombstones beside the one serving, and swaps it in under the
collection's lock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.waits import timed
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
        self.opened = Counter(
            "tollgate_vector_indexes_opened_total",
            "ANN indexes opened in the background (file: loaded and replayed; rebuild: from PostgreSQL)",
            ["how"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "tollgate_vector_index_fallbacks_total",
            "Searches answered by exact search because their index was still opening",
            registry=registry,
        )
        self.compactions = Counter(
            "tollgate_vector_index_compactions_total",
            "ANN indexes rebuilt without their tombstones and swapped in",
            registry=registry,
        )
        self.tombstones = Gauge(
            "tollgate_vector_index_tombstones",
            "Removed slots held by the loaded ANN indexes (at the last compaction check)",
            registry=registry,
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


Sessions = async_sessionmaker[AsyncSession]


class IndexCache:
    def __init__(
        self,
        directory: Path,
        metrics: IndexMetrics,
        sessions: Sessions,
        threads: int = 0,
        *,
        wait_s: float = 2.0,
    ) -> None:
        self.directory = directory
        self.metrics = metrics
        self.sessions = sessions
        self.threads = threads
        self.wait_s = wait_s
        self._entries: dict[str, _Entry] = {}
        self._opening: dict[str, asyncio.Task[_Entry | None]] = {}

    def path(self, collection_id: str) -> Path:
        return self.directory / f"{collection_id}.usearch"

    def is_ready(self, collection_id: str) -> bool:
        return collection_id in self._entries

    def created(self, collection_id: str, dimension: int) -> None:
        """A collection made by this process: its (empty) index is ready at once."""
        if collection_id not in self._entries:
            self._publish(collection_id, _Entry(AnnIndex(dimension), saved_seq=0))

    def _publish(self, collection_id: str, entry: _Entry) -> None:
        self._entries[collection_id] = entry
        self.metrics.loaded.set(len(self._entries))

    def open(self, collection_id: str, dimension: int) -> asyncio.Task[_Entry | None]:
        """The background task opening the index (one per collection at a time)."""
        task = self._opening.get(collection_id)
        if task is None:
            task = asyncio.create_task(
                self._open(collection_id, dimension), name=f"vector-index-{collection_id}"
            )
            self._opening[collection_id] = task
            task.add_done_callback(lambda _t: self._opening.pop(collection_id, None))
        return task

    async def _open(self, collection_id: str, dimension: int) -> _Entry | None:
        entry = self._entries.get(collection_id)
        if entry is not None:
            return entry
        async with self.sessions() as session:
            repo = VectorRepository(session)
            revision = await repo.revision(collection_id)
            if revision is None:  # deleted meanwhile
                return None
            ann = await asyncio.to_thread(AnnIndex.load, self.path(collection_id), dimension)
            how = "file"
            if ann is None or ann.seq > revision:
                # none saved, unreadable, or ahead of the database (restored from a backup)
                ann, how = AnnIndex(dimension), "rebuild"
            saved = ann.seq
            await self._catch_up(repo, collection_id, ann, revision)
        existing = self._entries.get(collection_id)
        if existing is not None:  # made by this process meanwhile (created)
            return existing
        entry = _Entry(ann, saved_seq=saved)
        self._publish(collection_id, entry)
        self.metrics.opened.labels(how).inc()
        log.info("vector index opened", extra={"collection": collection_id, "how": how, "size": len(ann)})
        return entry

    async def search(
        self,
        repo: VectorRepository,
        collection_id: str,
        dimension: int,
        revision: int,
        run: Callable[[AnnIndex], Hits],
    ) -> Hits | None:
        """Brings the index up to `revision`, then runs `run(index)` in a worker thread. None when
        the index is still opening after `wait_s`: the caller searches exactly instead."""
        entry = self._entries.get(collection_id)
        if entry is None:
            opening = self.open(collection_id, dimension)
            try:
                entry = await timed(asyncio.shield(opening), self.wait_s)
            except TimeoutError:
                entry = None
            except asyncio.CancelledError:
                if not opening.cancelled():  # this request itself is cancelled
                    raise
                entry = None  # the collection was deleted meanwhile (forget)
            if entry is None:
                self.metrics.fallbacks.inc()
                return None
        async with entry.lock:
            if entry.ann.seq < revision:
                await self._catch_up(repo, collection_id, entry.ann, revision)
            return await asyncio.to_thread(run, entry.ann)

    async def _catch_up(
        self, repo: VectorRepository, collection_id: str, ann: AnnIndex, revision: int
    ) -> None:
        async for page in repo.changes(collection_id, ann.seq, revision):
            await asyncio.to_thread(self._apply, ann, page)
        ann.seq = max(ann.seq, revision)

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

    # ---- compaction ----------------------------------------------------------------------
    async def tombstones(self) -> dict[str, tuple[int, int]]:
        """(tombstones, live vectors) of every loaded index."""
        counts = {}
        for collection_id, entry in list(self._entries.items()):
            async with entry.lock:
                counts[collection_id] = (await asyncio.to_thread(entry.ann.tombstones), len(entry.ann))
        self.metrics.tombstones.set(sum(t for t, _ in counts.values()))
        return counts

    async def compact(self, collection_id: str) -> bool:
        """Rebuilds the index from PostgreSQL beside the one serving (searches go on), then, under
        the collection's lock, replays what the old one applied meanwhile and swaps it in."""
        entry = self._entries.get(collection_id)
        if entry is None:
            return False
        fresh = AnnIndex(entry.ann.dimension)
        async with self.sessions() as session:
            repo = VectorRepository(session)
            revision = await repo.revision(collection_id)
            if revision is None:
                return False
            await self._catch_up(repo, collection_id, fresh, revision)
        async with entry.lock:
            if self._entries.get(collection_id) is not entry:
                return False  # deleted meanwhile
            if entry.ann.seq > fresh.seq:
                async with self.sessions() as session:
                    await self._catch_up(VectorRepository(session), collection_id, fresh, entry.ann.seq)
            entry.ann = fresh
            entry.saved_seq = -1  # the next flush saves the compacted file
        self.metrics.compactions.inc()
        log.info("vector index compacted", extra={"collection": collection_id, "size": len(fresh)})
        return True

    async def forget(self, collection_id: str) -> None:
        """A deleted collection: drop it from memory and the volume."""
        opening = self._opening.pop(collection_id, None)
        if opening is not None:
            opening.cancel()
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
