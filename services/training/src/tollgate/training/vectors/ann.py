"""The ANN index of one collection: usearch's HNSW graph over L2-normalised float32 vectors (cosine
metric), keyed by the points' `key`. Synchronous and CPU-bound: callers run it in a worker thread.

Persisted as one file per collection with a sidecar naming the highest `seq` it contains; the file
is written to a temporary name and renamed into place, the sidecar after it, so a crash leaves an
older sidecar at worst and replaying rows the index already holds is harmless (an upsert replaces
the key's vector, a tombstone removes it)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from usearch.index import Index

# HNSW parameters: M=16 links per node, ef_construction=128; ef_search is raised per query to at
# least the number of candidates asked for (docs/vectors.md, docs/benchmarks.md).
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 96


@dataclass(frozen=True, slots=True)
class Hits:
    keys: np.ndarray  # uint64
    similarities: np.ndarray  # float32, cosine similarity, best first


def normalise(vectors: np.ndarray) -> np.ndarray:
    rows = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return rows / norms


class AnnIndex:
    def __init__(self, dimension: int, index: Index | None = None, seq: int = 0) -> None:
        self.dimension = dimension
        self.index = index or Index(
            ndim=dimension,
            metric="cos",
            dtype="f32",
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        self.seq = seq  # every row with seq <= this is applied

    def __len__(self) -> int:
        return len(self.index)

    def tombstones(self) -> int:
        """Slots of removed vectors the graph still holds (usearch keeps them as pass-through nodes
        and reuses them for later adds; searches still walk them). Cheap: reads usearch's counters."""
        return max(0, int(self.index.stats.nodes) - len(self.index))

    def upsert(self, keys: np.ndarray, vectors: np.ndarray, threads: int = 0) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        if not len(keys):
            return
        self.remove(keys)
        self.index.add(keys, normalise(vectors), threads=threads)

    def remove(self, keys: np.ndarray) -> None:
        present = [int(k) for k in np.asarray(keys, dtype=np.uint64) if self.index.contains(int(k))]
        if present:
            self.index.remove(np.asarray(present, dtype=np.uint64))

    def search(self, query: np.ndarray, count: int) -> Hits:
        count = min(count, len(self.index))
        if count <= 0:
            return Hits(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float32))
        self.index.expansion_search = max(EXPANSION_SEARCH, count)
        # Asked for most of the index, HNSW can come back one or two short (seen: 99 of a compacted
        # index's 100); scanning that few vectors exactly costs no more than walking the graph.
        exact = count * 2 >= len(self.index)
        matches = self.index.search(normalise(query)[0], count, exact=exact)
        return Hits(
            np.asarray(matches.keys, dtype=np.uint64), 1.0 - np.asarray(matches.distances, dtype=np.float32)
        )

    # ---- persistence ---------------------------------------------------------------------
    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(".usearch.tmp")
        self.index.save(str(scratch))
        os.replace(scratch, path)
        _write_json(_sidecar(path), {"seq": self.seq, "dimension": self.dimension, "count": len(self)})

    @classmethod
    def load(cls, path: Path, dimension: int) -> AnnIndex | None:
        """The saved index, or None when there is none or it does not fit (then rebuild)."""
        try:
            meta = json.loads(_sidecar(path).read_text())
            if int(meta["dimension"]) != dimension:
                return None
            index = Index.restore(str(path))
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        if index is None or index.ndim != dimension:
            return None
        index.expansion_search = EXPANSION_SEARCH
        return cls(dimension, index, int(meta["seq"]))

    @staticmethod
    def discard(path: Path) -> None:
        for leftover in (path, _sidecar(path), path.with_suffix(".usearch.tmp")):
            leftover.unlink(missing_ok=True)


def exact_top(query: np.ndarray, keys: np.ndarray, vectors: np.ndarray, count: int) -> Hits:
    """Brute-force cosine top-`count` over a candidate set (filtered searches on few points)."""
    if not len(keys):
        return Hits(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float32))
    scores = normalise(vectors) @ normalise(query)[0]
    count = min(count, len(keys))
    best = np.argpartition(-scores, count - 1)[:count]
    best = best[np.argsort(-scores[best], kind="stable")]
    return Hits(np.asarray(keys, dtype=np.uint64)[best], scores[best].astype(np.float32))


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _write_json(path: Path, data: dict[str, int]) -> None:
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(data))
    os.replace(scratch, path)
