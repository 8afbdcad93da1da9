"""The vector indexes' background work beside the requests (docs/vectors.md, "Startup and compaction"):

- at startup, every collection's index is opened (its file loaded and the rows written since
  replayed, or rebuilt from PostgreSQL), one collection after the other, so no request waits on a
  full rebuild; a search reaching a collection not opened yet waits at most the cache's `wait_s`
  and is otherwise answered by exact search;
- then, every `interval_s`, an index whose tombstones (removed vectors' slots still in the HNSW
  graph) are at least `min_tombstones` and more than `ratio` of its live vectors is rebuilt beside
  the serving one and swapped in (IndexCache.compact)."""

from __future__ import annotations

import asyncio
import logging

from tollgate.training.vectors.indexes import IndexCache
from tollgate.training.vectors.repository import VectorRepository

log = logging.getLogger(__name__)


def compaction_due(tombstones: int, live: int, ratio: float, min_tombstones: int) -> bool:
    return tombstones >= max(1, min_tombstones) and tombstones > ratio * live


class IndexMaintenance:
    def __init__(
        self,
        indexes: IndexCache,
        *,
        interval_s: float = 60.0,
        ratio: float = 0.25,
        min_tombstones: int = 1000,
    ) -> None:
        self.indexes = indexes
        self.interval_s = interval_s
        self.ratio = ratio
        self.min_tombstones = min_tombstones

    async def warm(self) -> int:
        """Opens every collection's index; returns how many are open."""
        async with self.indexes.sessions() as session:
            collections = await VectorRepository(session).all_collections()
        opened = 0
        for collection_id, dimension in collections:
            try:
                if await self.indexes.open(collection_id, dimension) is not None:
                    opened += 1
            except Exception:  # one broken collection does not keep the others cold
                log.exception("opening a vector index failed", extra={"collection": collection_id})
        log.info(
            "vector indexes opened at startup", extra={"collections": len(collections), "opened": opened}
        )
        return opened

    async def compact_due(self) -> list[str]:
        """Compacts every index that is due; returns their collection ids."""
        done = []
        for collection_id, (tombstones, live) in (await self.indexes.tombstones()).items():
            due = compaction_due(tombstones, live, self.ratio, self.min_tombstones)
            if due and await self.indexes.compact(collection_id):
                done.append(collection_id)
        return done

    async def run(self) -> None:
        """Background task (never returns): warm, then check for compaction every `interval_s`."""
        try:
            await self.warm()
        except Exception:
            log.exception("opening vector indexes at startup failed; searches open them on demand")
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.compact_due()
            except Exception:
                log.exception("vector index compaction failed; the serving indexes are unchanged")
