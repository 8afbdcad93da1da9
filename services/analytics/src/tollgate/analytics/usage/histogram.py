"""Fixed latency buckets (milliseconds) and percentiles estimated from bucket counts.

`usage_key_hourly.latency_buckets` stores one count per bucket, so percentiles over any range cost a
sum of small arrays, never a sort of raw facts. The bounds are stored data: changing them needs a
migration that rebuilds the histograms. Steps of 1-1.2-1.5-2-2.5-3-4-5-6-8 per decade (at most 25%
apart), so an estimate lies in the same bucket as the exact value.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

# Bucket i holds latencies in (LATENCY_BOUNDS_MS[i-1], LATENCY_BOUNDS_MS[i]]; bucket 0 is <= 1 ms,
# the last one (index len(LATENCY_BOUNDS_MS)) everything above 300 s.
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 8,
    10, 12, 15, 20, 25, 30, 40, 50, 60, 80,
    100, 120, 150, 200, 250, 300, 400, 500, 600, 800,
    1_000, 1_200, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 8_000,
    10_000, 12_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 60_000, 80_000,
    100_000, 120_000, 150_000, 200_000, 250_000, 300_000,
)  # fmt: skip
BUCKETS = len(LATENCY_BOUNDS_MS) + 1
PERCENTILES = (0.5, 0.9, 0.99)


def bucket_of(latency_ms: int) -> int:
    return bisect.bisect_left(LATENCY_BOUNDS_MS, max(latency_ms, 0))


def bucket_range(index: int, max_ms: int) -> tuple[int, int]:
    """(lower exclusive, upper inclusive) of bucket `index`; the open last bucket ends at `max_ms`."""
    lower = LATENCY_BOUNDS_MS[index - 1] if index > 0 else 0
    upper = LATENCY_BOUNDS_MS[index] if index < len(LATENCY_BOUNDS_MS) else max(max_ms, lower)
    return lower, upper


def empty_histogram() -> list[int]:
    return [0] * BUCKETS


def histogram_literal(counts: Sequence[int]) -> str:
    """A PostgreSQL array literal (arrays of arrays cannot be unnested row by row as parameters)."""
    return "{" + ",".join(str(int(c)) for c in counts) + "}"


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: int | None


def percentile(counts: Sequence[int], p: float, max_ms: int) -> float | None:
    """The nearest-rank p-th latency, interpolated linearly inside its bucket and capped at max_ms."""
    total = sum(counts)
    if total == 0:
        return None
    rank = max(1, math.ceil(p * total))
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower, upper = bucket_range(index, max_ms)
            value = lower + (upper - lower) * (rank - seen) / count
            return round(min(value, float(max(max_ms, lower))), 1)
        seen += count
    return float(max_ms)  # not reached: the ranks end inside the counts


def summarise(counts: Sequence[int], max_ms: int) -> LatencySummary:
    total = sum(counts)
    p50, p90, p99 = (percentile(counts, p, max_ms) for p in PERCENTILES)
    return LatencySummary(total, p50, p90, p99, max_ms if total else None)
