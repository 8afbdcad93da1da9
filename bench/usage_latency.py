"""`make bench-usage-latency`: latency percentiles, the errors feed and filtered usage at scale
(docs/benchmarks.md, "Latency percentiles and recent errors at scale").

Brings up the stack (the `test` profile unless TOLLGATE_PROFILE says otherwise; TOLLGATE_PORT_OFFSET
moves a private one), then:
1. the analytics consumer's CPU per event (bench/usage_storage.py's measure: the real decode and
   `UsageService.record`, now writing three rollups, in batches of 500);
2. loads what the routes read, as the consumer would have left it: `usage_key_hourly` rows for one
   organisation with `--keys` keys x 5 models busy every hour of `--days` days (each row 30 requests
   in a 54-bucket histogram) plus `--other-rows` rows of other organisations, the daily histograms
   summed from them (`usage_latency_daily`), and `--failed` failed facts in `usage_events` (1 in 20
   of them the organisation's) over the same days;
3. times, straight to the analytics service with a real key (authentication over gRPC included),
   `--runs` calls after a warm-up: `/analytics/latency` for the month (overall, by day, by model,
   one key), `/analytics/usage` for the month filtered by key and by operation, `/analytics/errors`
   (the first page, and a page 10 pages deep through its cursor).
Writes bench/usage_latency_results.json; the loaded rows (models `bench-*`, event ids `bench_lat_*`)
are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from usage_storage import consumer_cpu, dsn, table_size, time_get

from tollgate.analytics.usage.histogram import BUCKETS
from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack

MODELS = 5

# one hour of one (key, model): `requests` answered requests spread over the buckets 10 ms .. 8 s
_LOAD_ROLLUP = """
INSERT INTO usage_key_hourly (hour, org_id, key_id, operation, model, requests, errors, tokens_in,
    tokens_out, cost_micros, latency_ms_sum, latency_buckets, latency_ms_max)
SELECT %(first)s::timestamptz + ((g %% %(per_org)s) / %(per_hour)s) * interval '1 hour',
       CASE WHEN %(org)s = '' THEN 'bench_org_' || (g / %(per_org)s) ELSE %(org)s END,
       (g %% %(per_hour)s) / %(models)s + 1, 'chat', 'bench-model-' || (g %% %(models)s),
       %(requests)s, 0, 1000, 2000, 500, %(requests)s * 400, %(hist)s::bigint[], 7900
FROM generate_series(0, %(n)s - 1) AS g
"""

# the daily histograms of the same rows, as the consumer sums them (migration 0005's backfill)
_LOAD_DAILY = """
INSERT INTO usage_latency_daily (day, org_id, model, latency_buckets, latency_ms_max)
SELECT (hour AT TIME ZONE 'UTC')::date, org_id, model, ARRAY[{sums}]::bigint[], max(latency_ms_max)
FROM usage_key_hourly WHERE model LIKE 'bench-model-%%'
GROUP BY 1, 2, 3
"""

_LOAD_FAILED = """
INSERT INTO usage_events (event_id, org_id, key_id, user_id, model, provider, tokens_in, tokens_out,
                          cost_micros, latency_ms, status, stream, created_at, operation, endpoint)
SELECT 'bench_lat_' || g, CASE WHEN g %% 20 = 0 THEN %(org)s ELSE 'bench_org_' || (g %% 997) END,
       1 + g %% 8, 'bench', 'bench-model-' || (g %% 5), 'bench', 10, 0, 0, 30 + g %% 900,
       CASE WHEN g %% 3 = 0 THEN 'upstream_timeout' ELSE 'upstream_error' END, false,
       %(first)s::timestamptz + (g::float8 / %(n)s) * %(days)s * interval '1 day',
       'chat', '/v1/chat/completions'
FROM generate_series(1, %(n)s) AS g
"""


def _histogram(requests: int) -> str:
    counts = [0] * BUCKETS
    for i in range(requests):
        counts[7 + (i * 31) % 30] += 1  # buckets 7 (10 ms) .. 36 (8 s)
    return "{" + ",".join(map(str, counts)) + "}"


def load(cfg: StackConfig, org: str, days: int, keys: int, other_rows: int, failed: int) -> dict[str, Any]:
    today = dt.datetime.now(dt.UTC).date()
    first = dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time(), dt.UTC)
    per_hour = keys * MODELS
    requests = 30
    with psycopg.connect(dsn(cfg, "analytics"), autocommit=True) as conn:
        conn.execute("SET timezone = 'UTC'")
        times = [first + dt.timedelta(days=i) for i in range(days)]
        for parent in ("public.usage_events", "public.usage_key_hourly"):
            conn.execute("SELECT partman.create_partition_time(%s, %s, false)", (parent, times))
        org_rows = days * 24 * per_hour
        base = {
            "first": first,
            "per_hour": per_hour,
            "per_org": org_rows,
            "models": MODELS,
            "requests": requests,
        }
        hist = _histogram(requests)
        t0 = dt.datetime.now()
        conn.execute(_LOAD_ROLLUP, {**base, "org": org, "n": org_rows, "hist": hist})
        conn.execute(_LOAD_ROLLUP, {**base, "org": "", "n": other_rows, "hist": hist})
        sums = ", ".join(f"sum(latency_buckets[{i}])" for i in range(1, BUCKETS + 1))
        conn.execute(_LOAD_DAILY.format(sums=sums))
        conn.execute(_LOAD_FAILED, {"org": org, "first": first, "n": failed, "days": days})
        conn.execute("ANALYZE usage_key_hourly")
        conn.execute("ANALYZE usage_latency_daily")
        conn.execute("ANALYZE usage_events")
        seconds = (dt.datetime.now() - t0).total_seconds()
        rows = conn.execute("SELECT count(*) FROM usage_key_hourly").fetchone()
    return {
        "org_rollup_rows": org_rows,
        "org_requests_represented": org_rows * requests,
        "usage_key_hourly_rows": rows[0] if rows else None,
        "org_latency_daily_rows": days * MODELS,
        "failed_facts": failed,
        "org_failed_facts": failed // 20,
        "load_s": round(seconds, 1),
    }


def unload(cfg: StackConfig) -> None:
    with psycopg.connect(dsn(cfg, "analytics"), autocommit=True) as conn:
        conn.execute("DELETE FROM usage_key_hourly WHERE model LIKE 'bench-%%'")
        conn.execute("DELETE FROM usage_latency_daily WHERE model LIKE 'bench-%%'")
        conn.execute("DELETE FROM usage_events WHERE event_id LIKE 'bench\\_lat\\_%%'")


def queries(cfg: StackConfig, key: str, days: int, runs: int) -> dict[str, Any]:
    end = dt.datetime.now(dt.UTC).date()
    window = {"start_date": (end - dt.timedelta(days=days - 1)).isoformat(), "end_date": end.isoformat()}
    base = cfg.url("analytics")
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        cursor = None
        for _ in range(10):  # ten pages deep
            params = {"limit": "20", **({"before": cursor} if cursor else {})}
            cursor = client.get(base + "/analytics/errors", params=params).json()["next_before"]
        latency, usage, errors = (
            base + "/analytics/latency",
            base + "/analytics/usage",
            base + "/analytics/errors",
        )
        return {
            "latency_month": time_get(client, latency, window, runs),
            "latency_month_by_day": time_get(client, latency, {**window, "group_by": "day"}, runs),
            "latency_month_by_model": time_get(client, latency, {**window, "group_by": "model"}, runs),
            "latency_month_one_key": time_get(client, latency, {**window, "key_id": "3"}, runs),
            "usage_month_by_day_one_key": time_get(
                client, usage, {**window, "group_by": "day", "key_id": "3"}, runs
            ),
            "usage_month_by_model_operation": time_get(
                client, usage, {**window, "group_by": "model", "operation": "chat"}, runs
            ),
            "errors_first_page": time_get(client, errors, {"limit": "20"}, runs),
            "errors_page_11": time_get(client, errors, {"limit": "20", "before": cursor or ""}, runs),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keys", type=int, default=8)
    parser.add_argument("--other-rows", type=int, default=1_000_000)
    parser.add_argument("--failed", type=int, default=400_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--cpu-events", type=int, default=20_500)
    args = parser.parse_args()

    stack = Stack(StackConfig.from_env(profile=os.environ.get("TOLLGATE_PROFILE", "test")))
    stack.up(local_model=False)
    cfg = stack.cfg
    admin = httpx.Client(
        base_url=cfg.url("gateway"), headers={"Authorization": f"Bearer {cfg.admin_api_key}"}, timeout=30
    )
    resp = admin.post("/admin/api-key/apply", json={"name": f"bench-latency-{uuid.uuid4().hex[:6]}"})
    resp.raise_for_status()
    account = resp.json()
    org = account["org_id"]

    print("consumer CPU per event (three rollups) ...", flush=True)
    cpu_orgs = [org] + [f"bench_org_{i}" for i in range(1, 50)]
    cpu = {"tables": table_size(cfg), **asyncio.run(consumer_cpu(cfg, cpu_orgs, args.cpu_events))}
    print(json.dumps(cpu), flush=True)
    print("loading the rollup and failed facts ...", flush=True)
    try:
        loaded = load(cfg, org, args.days, args.keys, args.other_rows, args.failed)
        print(json.dumps(loaded), flush=True)
        print(f"timing the routes ({args.runs} calls each) ...", flush=True)
        timed = queries(cfg, account["api_key"], args.days, args.runs)
        print(json.dumps(timed), flush=True)
    finally:
        unload(cfg)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "consumer_cpu": cpu,
        "load": loaded,
        "queries": timed,
    }
    Path(cfg.root / "bench" / "usage_latency_results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
