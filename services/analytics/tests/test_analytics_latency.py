"""Latency histograms: bucket bounds, percentile estimates, and the per key/operation deltas."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import random
from pathlib import Path

from analytics_testkit import T0, encode_usage, make_fact

from tollgate.analytics.consumers.usage import decode_usage
from tollgate.analytics.usage.histogram import (
    BUCKETS,
    LATENCY_BOUNDS_MS,
    bucket_of,
    bucket_range,
    empty_histogram,
    percentile,
    summarise,
)
from tollgate.analytics.usage.insights import key_hourly_deltas

MIGRATION = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "0005_key_rollup_latency.py"


def _exact(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def _histogram(values: list[int]) -> list[int]:
    counts = empty_histogram()
    for v in values:
        counts[bucket_of(v)] += 1
    return counts


def test_bounds_are_increasing_and_the_migration_backfills_with_the_same_ones() -> None:
    assert list(LATENCY_BOUNDS_MS) == sorted(set(LATENCY_BOUNDS_MS))
    assert len(LATENCY_BOUNDS_MS) + 1 == BUCKETS
    spec = importlib.util.spec_from_file_location("migration_0005", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.BOUNDS == LATENCY_BOUNDS_MS


def test_a_bucket_holds_latencies_above_the_previous_bound_up_to_its_own() -> None:
    assert [bucket_of(v) for v in (0, 1, 2, 3, 299, 300, 301)] == [0, 0, 1, 2, 22, 22, 23]
    assert bucket_of(10_000_000) == BUCKETS - 1
    assert bucket_range(0, 0) == (0, 1)
    assert bucket_range(23, 0) == (300, 400)
    assert bucket_range(BUCKETS - 1, 400_000) == (300_000, 400_000)


def test_estimates_fall_in_the_bucket_of_the_exact_percentile() -> None:
    rng = random.Random(7)
    for _ in range(200):
        values = [int(rng.lognormvariate(5, 1.5)) for _ in range(rng.randint(1, 400))]
        counts, top = _histogram(values), max(values)
        for p in (0.5, 0.9, 0.99):
            exact = _exact(values, p)
            lower, upper = bucket_range(bucket_of(exact), top)
            estimate = percentile(counts, p, top)
            assert estimate is not None and lower <= estimate <= upper, (p, exact, estimate)


def test_an_empty_histogram_has_no_percentiles_and_one_value_is_capped_at_the_max() -> None:
    assert summarise(empty_histogram(), 0).p50_ms is None
    one = summarise(_histogram([130]), 130)
    assert (one.count, one.p50_ms, one.p99_ms, one.max_ms) == (1, 130.0, 130.0, 130)


def test_deltas_split_by_key_and_operation_and_count_only_answered_latencies() -> None:
    facts = [
        make_fact("a", latency_ms=90),
        make_fact("b", latency_ms=310),
        make_fact("c", latency_ms=60_000, status="upstream_timeout", cost_micros=0),
        make_fact("d", key_id=8, operation="embedding", latency_ms=5),
        make_fact("e", created_at=T0 + dt.timedelta(hours=1), latency_ms=20),
    ]
    deltas = {(d.hour.hour, d.key_id, d.operation): d for d in key_hourly_deltas(facts)}
    chat = deltas[(12, 7, "chat")]
    assert (chat.requests, chat.errors, chat.latency_ms_sum, chat.latency_ms_max) == (3, 1, 60_400, 310)
    assert sum(chat.latency_buckets) == 2
    assert chat.latency_buckets[bucket_of(90)] == 1 and chat.latency_buckets[bucket_of(310)] == 1
    assert deltas[(12, 8, "embedding")].latency_buckets[bucket_of(5)] == 1
    assert deltas[(13, 7, "chat")].requests == 1
    assert len(deltas) == 3


def test_decoded_facts_carry_the_operation_and_endpoint_and_no_operation_means_chat() -> None:
    fact = make_fact("x", operation="embedding", endpoint="/v1/embeddings")
    decoded = decode_usage(encode_usage(fact), 0)
    assert decoded is not None and (decoded.operation, decoded.endpoint) == ("embedding", "/v1/embeddings")
    plain = decode_usage(encode_usage(make_fact("y", operation="")), 0)
    assert plain is not None and plain.operation == "chat"
