"""Filters parsing and the ANN index (usearch): recall against exact search, upserts replacing a
key's vector, tombstones, and a saved file that loads with its seq (or is refused and rebuilt)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tollgate.common.errors import InvalidRequest
from tollgate.training.vectors.ann import AnnIndex, exact_top
from tollgate.training.vectors.filters import AnyOf, Range, parse_filters


def test_filters_parse_equality_lists_and_both_range_forms() -> None:
    parsed = parse_filters(
        {
            "category": "technology",
            "tag": ["a", "b"],
            "date_range": "2024-01-01:2024-02-01",
            "at_range": "2024-01-01T00:00:00:2024-01-01T12:00:00",
            "score_range": "0.5:",
            "price": {"gte": 10, "lt": 20},
        }
    )
    assert parsed == [
        AnyOf("category", ("technology",)),
        AnyOf("tag", ("a", "b")),
        Range("date", "string", (("gte", "2024-01-01"), ("lte", "2024-02-01"))),
        Range("at", "string", (("gte", "2024-01-01T00:00:00"), ("lte", "2024-01-01T12:00:00"))),
        Range("score", "number", (("gte", 0.5),)),
        Range("price", "number", (("gte", 10), ("lt", 20))),
    ]


@pytest.mark.parametrize(
    "bad",
    [
        ["not", "an", "object"],
        {"date_range": "2024"},
        {"date_range": ":"},
        {"price": {"between": 1}},
        {"price": {"gte": 1, "lt": "z"}},
        {"tag": []},
        {"nested": {"gte": {"x": 1}}},
        {"bad name!": 1},
    ],
)
def test_bad_filters_are_invalid_parameters(bad: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_filters(bad)
    assert caught.value.param == "filters"


def _clustered(n: int, dim: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, dim)).astype(np.float32)
    points = centers[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
    return points.astype(np.float32)


def test_ann_recall_against_exact_search() -> None:
    data = _clustered(3000, 32)
    keys = np.arange(1, 3001, dtype=np.uint64)
    ann = AnnIndex(32)
    ann.upsert(keys, data)
    queries = _clustered(50, 32, seed=8)
    found = 0
    for q in queries:
        truth = set(exact_top(q, keys, data, 10).keys.tolist())
        found += len(truth & set(ann.search(q, 10).keys.tolist()))
    assert found / (50 * 10) >= 0.95


def test_upsert_replaces_and_remove_forgets_and_a_saved_index_loads(tmp_path: Path) -> None:
    ann = AnnIndex(4, seq=0)
    ann.upsert(
        np.asarray([1, 2], dtype=np.uint64), np.asarray([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32)
    )
    ann.upsert(np.asarray([1], dtype=np.uint64), np.asarray([[0, 0, 1, 0]], dtype=np.float32))
    hit = ann.search(np.asarray([0, 0, 1, 0], dtype=np.float32), 1)
    assert hit.keys.tolist() == [1] and hit.similarities[0] == pytest.approx(1.0, abs=1e-5)
    ann.remove(np.asarray([2, 99], dtype=np.uint64))
    assert len(ann) == 1
    ann.seq = 7
    path = tmp_path / "c.usearch"
    ann.save(path)
    loaded = AnnIndex.load(path, 4)
    assert loaded is not None and loaded.seq == 7 and len(loaded) == 1
    assert AnnIndex.load(path, 8) is None  # another dimension: rebuilt from PostgreSQL
    path.write_bytes(b"garbage")
    assert AnnIndex.load(path, 4) is None
    AnnIndex.discard(path)
    assert not path.exists()


def test_asking_for_most_of_the_index_returns_every_live_vector() -> None:
    """A compacted index of 100 once answered 99 for top_k=100 (HNSW walks can miss a node):
    asked for at least half of it, the index scans exactly, so nothing is ever missing."""
    dim = 16
    for seed in range(20):
        rng = np.random.default_rng(seed)
        index = AnnIndex(dim)
        keys = np.arange(1, 201, dtype=np.uint64)
        index.upsert(keys, rng.normal(size=(200, dim)).astype(np.float32))
        index.remove(keys[::2])
        query = rng.normal(size=dim).astype(np.float32)
        for count in (50, 100):
            hits = index.search(query, count)
            assert len(hits.keys) == count and len(set(hits.keys.tolist())) == count, (seed, count)
            assert not set(hits.keys.tolist()) & set(keys[::2].tolist())
