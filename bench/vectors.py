"""Vector search bench (issue 14, item 4): the training service's ANN index (usearch HNSW through
tollgate.training.vectors.ann, the same class and parameters the service uses) on clustered
synthetic 384-dimensional vectors; recall@10 against exact search and single-query latency.

    uv run python bench/vectors.py [--n 1000000] [--queries 1000] [--out bench/vectors_results.json]

Data: a Gaussian mixture (2,000 centres, per-point noise at 0.35x the centre scale), like sentence
embeddings of topical text; queries are fresh draws from the same mixture. Ground truth: exact
cosine top-10 by a NumPy matrix product. Latency: one query at a time, as a request does."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from tollgate.training.vectors.ann import AnnIndex, normalise

DIM = 384


def mixture(n: int, centres: np.ndarray, rng: np.random.Generator, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        picks = rng.integers(0, len(centres), stop - start)
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32) * 0.35
        out[start:stop] = centres[picks] + noise
    return out


def exact_truth(data: np.ndarray, queries: np.ndarray, keys: np.ndarray, batch: int = 100) -> list[set[int]]:
    """Exact cosine top-10 of every query (rows are normalised: a matrix product), in query batches."""
    truth: list[set[int]] = []
    for start in range(0, len(queries), batch):
        scores = data @ queries[start : start + batch].T  # (n, batch)
        for column in scores.T:
            best = np.argpartition(-column, 10)[:10]
            truth.append(set(keys[best].tolist()))
    return truth


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("bench/vectors_results.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(14)
    centres = rng.standard_normal((2000, DIM), dtype=np.float32)
    data = normalise(mixture(args.n, centres, rng))
    queries = normalise(mixture(args.queries, centres, rng))
    keys = np.arange(1, args.n + 1, dtype=np.uint64)

    ann = AnnIndex(DIM)
    started = time.perf_counter()
    step = 100_000
    for start in range(0, args.n, step):
        ann.upsert(keys[start : start + step], data[start : start + step])
        print(
            f"  added {min(args.n, start + step):,} after {time.perf_counter() - started:.0f} s", flush=True
        )
    build_s = time.perf_counter() - started

    truth = exact_truth(data, queries, keys)
    latencies, found = [], 0
    for q, expected in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        hits = ann.search(q, 10)
        latencies.append((time.perf_counter() - t0) * 1000)
        found += len(expected & set(hits.keys.tolist()))
    lat = np.asarray(latencies)
    result = {
        "vectors": args.n,
        "dimension": DIM,
        "queries": args.queries,
        "build_s": round(build_s, 1),
        "recall_at_10": round(found / (10 * args.queries), 4),
        "latency_ms": {
            p: round(float(np.percentile(lat, q)), 3) for p, q in (("p50", 50), ("p99", 99), ("max", 100))
        },
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
