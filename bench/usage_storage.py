"""`make bench-usage`: usage storage at scale (docs/benchmarks.md, "Usage storage at scale").

Brings up the stack (the `test` profile unless TOLLGATE_PROFILE says otherwise; TOLLGATE_PORT_OFFSET
moves a private one), then:
1. the analytics consumer's CPU per event on the tables as they are (small): the real decode and
   `UsageService.record` in batches of 500, as `UsageConsumer` stores them, against the stack's
   analytics database. CPU = this process (`time.process_time`) + the PostgreSQL backend serving
   its connection (/proc/<pid>/stat), so index work in the database is counted;
2. loads `--rows` usage facts (default 20M) spread over `--days` UTC days (default 30, ending
   today) and `--orgs` organisations with `INSERT ... SELECT generate_series` per day partition,
   then the rollups from them (as the consumer would have built them: usage_daily, usage_hourly,
   and billing's cost_daily), timed;
3. times `GET /analytics/usage` (group_by day and model) and `GET /cost/stats` for a month of one
   organisation (one of the loaded ones, a real key): p50 / p99 over `--runs` calls straight to
   each service; and, for comparison, the same sums straight from the raw facts;
4. the consumer's CPU per event again, now next to the big table.
Writes bench/usage_storage_results.json. The loaded rows (event ids `bench_*`, orgs `bench_org_*`)
are deleted at the end unless --keep: their partitions are dropped only by retention.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psycopg
from pg_cpu import cpu_per_event, dsn
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.consumers.usage import decode_usage
from tollgate.analytics.usage.repository import UsageRepository
from tollgate.analytics.usage.service import StoredWindow, UsageService
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.contracts.v1 import events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack

MODELS = 5


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))], 2)


# ---- 1 / 4: consumer CPU per event ---------------------------------------------------------------


async def consumer_cpu(cfg: StackConfig, org_ids: list[str], events: int, batch: int = 500) -> dict[str, Any]:
    engine = make_engine(cfg.database_url("analytics"), pool_size=1)
    sessions = make_sessionmaker(engine)
    service = UsageService(UsageRepository(), StoredWindow(retention_days=90))
    now_ms = int(time.time() * 1000)
    payloads = [
        events_pb2.UsageRecorded(
            event_id=f"req_{uuid.uuid4().hex}",
            org_id=org_ids[i % len(org_ids)],
            key_id=1,
            user_id="bench",
            model=f"bench-cpu-{i % MODELS}",  # not the loaded rows' models: rollup rows of their own
            provider="bench",
            tokens_in=20,
            tokens_out=30,
            cost_micros=150,
            latency_ms=40,
            status="ok",
            started_at_unix_ms=now_ms - 40,
            finished_at_unix_ms=now_ms,
        ).SerializeToString()
        for i in range(events)
    ]

    async def record(session: AsyncSession, chunk: Sequence[bytes]) -> None:
        facts = [f for p in chunk if (f := decode_usage(p, now_ms))]
        async with session.begin():
            await service.record(session, facts)

    try:
        async with sessions() as session:
            return await cpu_per_event(session, payloads, record, batch)
    finally:
        await engine.dispose()


def _sql(statement: str) -> Any:
    from sqlalchemy import text

    return text(statement)


# ---- 2: bulk load ----------------------------------------------------------------------------------

_LOAD_DAY = """
INSERT INTO usage_events (event_id, org_id, key_id, user_id, model, provider, tokens_in, tokens_out,
                          cost_micros, latency_ms, status, stream, created_at)
SELECT 'bench_' || %(tag)s || '_' || g,
       CASE WHEN g %% %(orgs)s = 0 THEN %(target)s ELSE 'bench_org_' || (g %% %(orgs)s) END,
       g %% 7, 'bench', 'bench-model-' || ((g / %(orgs)s) %% 5), 'bench',
       10 + g %% 90, g %% 200, 50 + g %% 1000, 20 + g %% 500,
       CASE WHEN g %% 50 = 0 THEN 'upstream_error' ELSE 'ok' END, g %% 2 = 0,
       %(day)s::timestamptz + (g %% 86400) * interval '1 second'
FROM generate_series(1, %(n)s) AS g
"""

_ROLL_HOURS = """
INSERT INTO usage_hourly AS d (hour, org_id, model, requests, errors, tokens_in, tokens_out, cost_micros,
                               latency_ms_sum)
SELECT date_trunc('hour', created_at), org_id, model, count(*), count(*) FILTER (WHERE status <> 'ok'),
       sum(tokens_in), sum(tokens_out), sum(cost_micros), sum(latency_ms)
FROM usage_events
WHERE created_at >= %(day)s::timestamptz AND created_at < %(day)s::timestamptz + interval '1 day'
  AND event_id LIKE 'bench\\_%%'
GROUP BY 1, 2, 3
"""

# the day's bench rows of the hourly rollup (each hour there was empty before) summed into the daily one
_ROLL_DAY = """
INSERT INTO usage_daily AS d (day, org_id, model, requests, errors, tokens_in, tokens_out, cost_micros,
                              latency_ms_sum)
SELECT %(day)s::date, org_id, model, sum(requests), sum(errors), sum(tokens_in), sum(tokens_out),
       sum(cost_micros), sum(latency_ms_sum)
FROM usage_hourly
WHERE hour >= %(day)s::timestamptz AND hour < %(day)s::timestamptz + interval '1 day'
  AND model LIKE 'bench-model-%%'
GROUP BY 2, 3
ON CONFLICT ON CONSTRAINT pk_usage_daily DO UPDATE SET
    requests = d.requests + excluded.requests, errors = d.errors + excluded.errors,
    tokens_in = d.tokens_in + excluded.tokens_in, tokens_out = d.tokens_out + excluded.tokens_out,
    cost_micros = d.cost_micros + excluded.cost_micros,
    latency_ms_sum = d.latency_ms_sum + excluded.latency_ms_sum
"""


def load(cfg: StackConfig, rows: int, days: int, orgs: int, target: str) -> dict[str, Any]:
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    per_day = rows // days
    timings: dict[str, float] = {"facts_s": 0.0, "rollups_s": 0.0, "billing_s": 0.0}
    with psycopg.connect(dsn(cfg, "analytics"), autocommit=True) as conn:
        conn.execute("SET timezone = 'UTC'")
        conn.execute("SET work_mem = '256MB'")  # the rollups' hash aggregates stay in memory
        # the loaded days' partitions (a fresh database has them from a week back only)
        times = [dt.datetime.combine(first + dt.timedelta(days=i), dt.time(), dt.UTC) for i in range(days)]
        for parent in ("public.usage_events", "public.usage_hourly"):
            conn.execute("SELECT partman.create_partition_time(%s, %s, false)", (parent, times))
        for i in range(days):
            day = first + dt.timedelta(days=i)
            t0 = time.perf_counter()
            params = {"tag": f"{day:%Y%m%d}", "orgs": orgs, "target": target, "n": per_day}
            conn.execute(_LOAD_DAY, {**params, "day": day.isoformat()})
            t1 = time.perf_counter()
            conn.execute(_ROLL_HOURS, {"day": day.isoformat()})
            conn.execute(_ROLL_DAY, {"day": day.isoformat()})
            t2 = time.perf_counter()
            timings["facts_s"] += t1 - t0
            timings["rollups_s"] += t2 - t1
            print(f"  {day}: {per_day} facts in {t1 - t0:.1f} s, rollups {t2 - t1:.1f} s", flush=True)
        conn.execute("ANALYZE usage_events")
        daily = conn.execute(
            "SELECT org_id, day, sum(cost_micros), sum(requests), sum(tokens_in + tokens_out)"
            " FROM usage_daily WHERE (org_id LIKE 'bench\\_org\\_%%' OR org_id = %s) AND day >= %s"
            " GROUP BY 1, 2",
            (target, first),
        ).fetchall()
    # billing's own rollup of the same events (its worker would have built it while settling them)
    t0 = time.perf_counter()
    with psycopg.connect(dsn(cfg, "billing"), autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY cost_daily (org_id, day, category, cost_micros, requests, tokens, cached_tokens,"
            " cache_write_tokens, reasoning_tokens) FROM STDIN"
        ) as copy:
            for org_id, day, cost, requests, tokens in daily:
                copy.write_row((org_id, day, "inference", cost, requests, tokens, 0, 0, 0))
        conn.execute("ANALYZE cost_daily")
    timings["billing_s"] = time.perf_counter() - t0
    return {
        "rows": per_day * days,
        "days": days,
        "orgs": orgs,
        "cost_daily_rows": len(daily),
        **{k: round(v, 1) for k, v in timings.items()},
        "facts_rows_per_s": round(per_day * days / timings["facts_s"]),
    }


def unload(cfg: StackConfig, target: str) -> None:
    with psycopg.connect(dsn(cfg, "analytics"), autocommit=True) as conn:
        for table in ("usage_events", "usage_daily", "usage_hourly"):
            conn.execute(f"DELETE FROM {table} WHERE model LIKE 'bench-%%'")
    with psycopg.connect(dsn(cfg, "billing"), autocommit=True) as conn:
        conn.execute("DELETE FROM cost_daily WHERE org_id LIKE 'bench\\_org\\_%%' OR org_id = %s", (target,))


# ---- 3: queries -------------------------------------------------------------------------------------


def time_get(client: httpx.Client, url: str, params: dict[str, str], runs: int) -> dict[str, Any]:
    client.get(url, params=params).raise_for_status()  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        resp = client.get(url, params=params)
        samples.append((time.perf_counter() - t0) * 1000)
        resp.raise_for_status()
    return {
        "runs": runs,
        "p50_ms": pct(samples, 50),
        "p99_ms": pct(samples, 99),
        "max_ms": round(max(samples), 2),
    }


def raw_sum_ms(cfg: StackConfig, org: str, start: dt.date, end: dt.date, runs: int = 5) -> dict[str, Any]:
    """The same month's daily sums straight from the raw facts: what the rollups save."""
    samples = []
    with psycopg.connect(dsn(cfg, "analytics"), autocommit=True) as conn:
        for _ in range(runs):
            t0 = time.perf_counter()
            conn.execute(
                "SELECT (created_at AT TIME ZONE 'UTC')::date, count(*), sum(cost_micros) FROM usage_events"
                " WHERE org_id = %s AND created_at >= %s AND created_at < %s GROUP BY 1",
                (org, start, end + dt.timedelta(days=1)),
            ).fetchall()
            samples.append((time.perf_counter() - t0) * 1000)
    return {"runs": runs, "median_ms": round(statistics.median(samples), 2)}


def queries(cfg: StackConfig, key: str, org: str, days: int, runs: int) -> dict[str, Any]:
    end = dt.datetime.now(dt.UTC).date()
    start = end - dt.timedelta(days=min(days, 30) - 1)
    window = {"start_date": start.isoformat(), "end_date": end.isoformat()}
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        analytics = cfg.url("analytics") + "/analytics/usage"
        return {
            "window_days": (end - start).days + 1,
            "analytics_usage_by_day": time_get(client, analytics, {**window, "group_by": "day"}, runs),
            "analytics_usage_by_model": time_get(client, analytics, {**window, "group_by": "model"}, runs),
            "cost_stats_daily": time_get(client, cfg.url("billing") + "/cost/stats", window, runs),
            "raw_facts_daily_sums": raw_sum_ms(cfg, org, start, end),
        }


def table_size(cfg: StackConfig) -> dict[str, Any]:
    with psycopg.connect(dsn(cfg, "analytics"), autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM usage_events),"
            " pg_size_pretty(sum(pg_total_relation_size(inhrelid)))::text, count(*)"
            " FROM pg_inherits WHERE inhparent = 'usage_events'::regclass"
        ).fetchone()
    assert row is not None
    return {"usage_events_rows": row[0], "usage_events_size": row[1], "partitions": row[2]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--cpu-events", type=int, default=20_500)
    parser.add_argument("--keep", action="store_true", help="keep the loaded rows")
    args = parser.parse_args()

    stack = Stack(StackConfig.from_env(profile=os.environ.get("TOLLGATE_PROFILE", "test")))
    stack.up(local_model=False)
    cfg = stack.cfg
    admin = httpx.Client(
        base_url=cfg.url("gateway"), headers={"Authorization": f"Bearer {cfg.admin_api_key}"}, timeout=30
    )
    resp = admin.post("/admin/api-key/apply", json={"name": f"bench-usage-{uuid.uuid4().hex[:6]}"})
    resp.raise_for_status()
    account = resp.json()
    org = account["org_id"]
    cpu_orgs = [org] + [f"bench_org_{i}" for i in range(1, 50)]

    print("consumer CPU per event, tables as they are ...", flush=True)
    small = {"tables": table_size(cfg), **asyncio.run(consumer_cpu(cfg, cpu_orgs, args.cpu_events))}
    print(json.dumps(small), flush=True)
    print(f"loading {args.rows} facts over {args.days} days, {args.orgs} organisations ...", flush=True)
    loaded = load(cfg, args.rows, args.days, args.orgs, org)
    print(json.dumps(loaded), flush=True)
    print(f"timing the month's reports ({args.runs} calls each) ...", flush=True)
    timed = queries(cfg, account["api_key"], org, args.days, args.runs)
    print(json.dumps(timed), flush=True)
    print("consumer CPU per event, next to the big table ...", flush=True)
    big = {"tables": table_size(cfg), **asyncio.run(consumer_cpu(cfg, cpu_orgs, args.cpu_events))}
    print(json.dumps(big), flush=True)
    if not args.keep:
        print("deleting the loaded rows ...", flush=True)
        unload(cfg, org)

    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "consumer_cpu_small": small,
        "load": loaded,
        "queries": timed,
        "consumer_cpu_big": big,
    }
    out = Path(cfg.root / "bench" / "usage_storage_results.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
