"""`make bench-billing-scale`: billing's per-event tables at tens of millions of rows (docs/benchmarks.md,
"Billing's tables at scale").

Billing keeps one `usage_settlements` row (the exactly-once key: event id and the UTC day of the
event's own time; one partition per day, kept 35 days) and one `ledger_entries` row (the money
record, kept for ever; its unique (kind, ref) index leaves usage entries out) per paid request.
This bench asks whether settling an event gets dearer as those tables grow. On a stack (the `test`
profile unless TOLLGATE_PROFILE says otherwise; TOLLGATE_PORT_OFFSET moves a private one) it:
1. measures the billing worker's CPU per event with the tables as they are: the real decode
   (`UsageCharge.from_event`) and `settlements.settle_batch` (settlement rows, wallets, ledger,
   budget counters, `cost_daily`) in batches of 500 in one transaction each, as `UsageConsumer`
   settles them, for 50 funded organisations. CPU = this process (`time.process_time`) plus the
   PostgreSQL backend serving its connection (/proc/<pid>/stat), so index maintenance is counted;
2. loads `--rows` settlements and as many ledger entries (default 20M each) for 1,000 other
   organisations over the last 30 days (their day partitions made first, as a running system has
   them), with `INSERT ... SELECT generate_series` in chunks. The loaded ids
   are `bench_` + a zero-padded counter, so the load appends to the unique indexes' right edge
   (a random-order load of 20M rows takes hours here, and only the finished index matters); the
   measured events' ids start with a random counter value below `--rows`, so each lands at a random
   place among them, as a real (random) event id does in a real table;
3. measures the CPU per event again, next to the big tables.
The loaded rows (ids `bench_*`, orgs `bench_org_*`) are deleted at the end unless --keep. Writes
bench/billing_scale_results.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from pg_cpu import cpu_per_event
from pg_cpu import dsn as pg_dsn
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.settlements import service as settlements
from tollgate.billing.settlements.schemas import UsageCharge
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.contracts.v1 import events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack

CPU_ORGS = [f"bench_cpu_org_{i}" for i in range(50)]
FUNDS = 10**15  # the bench organisations never run dry, whatever the run length

_LOAD_SETTLEMENTS = """
INSERT INTO usage_settlements
    (event_id, org_id, key_id, hold_id, model, cost_micros, status, created_at, event_day)
SELECT 'bench_' || lpad(g::text, 10, '0'), 'bench_org_' || (g %% %(orgs)s), g %% 5000, NULL,
       'bench-model-' || (g %% 5), 150, 'ok', t, date_trunc('day', t - interval '2 seconds', 'UTC')
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g,
     LATERAL (SELECT now() - make_interval(secs => (g %% (30 * 86400))::double precision) AS t) AS at
"""
_LOAD_LEDGER = """
INSERT INTO ledger_entries
    (org_id, amount_micros, kind, ref, key_id, balance_after, wallet_version, created_at)
SELECT 'bench_org_' || (g %% %(orgs)s), -150, 'usage', 'bench_' || lpad(g::text, 10, '0'), g %% 5000,
       0, g, now() - make_interval(secs => (g %% (30 * 86400))::double precision)
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
"""


def dsn(cfg: StackConfig) -> str:
    return pg_dsn(cfg, "billing")


def fund(cfg: StackConfig) -> None:
    with psycopg.connect(dsn(cfg), autocommit=True) as conn:
        for org in CPU_ORGS:
            conn.execute(
                "INSERT INTO wallets (org_id, balance_micros) VALUES (%s, %s)"
                " ON CONFLICT (org_id) DO UPDATE SET balance_micros = excluded.balance_micros",
                (org, FUNDS),
            )


async def settle_cpu(cfg: StackConfig, events: int, id_space: int, batch: int = 500) -> dict[str, Any]:
    engine = make_engine(cfg.database_url("billing"), pool_size=1)
    sessions = make_sessionmaker(engine)
    now_ms = int(time.time() * 1000)
    payloads = [
        events_pb2.UsageRecorded(
            event_id=f"bench_{random.randrange(id_space):010d}_{uuid.uuid4().hex[:12]}",
            org_id=CPU_ORGS[i % len(CPU_ORGS)],
            key_id=1 + i % 7,
            model="bench-cpu",
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

    async def settle(session: AsyncSession, chunk: Sequence[bytes]) -> None:
        charges = [UsageCharge.from_event(events_pb2.UsageRecorded.FromString(p)) for p in chunk]
        async with session.begin():
            outcome = await settlements.settle_batch(session, charges)
        assert outcome.settled == len(chunk), outcome

    try:
        async with sessions() as session:
            return await cpu_per_event(session, payloads, settle, batch)
    finally:
        await engine.dispose()


def table_sizes(cfg: StackConfig) -> dict[str, Any]:
    with psycopg.connect(dsn(cfg), autocommit=True) as conn:
        out: dict[str, Any] = {}
        for table in ("usage_settlements", "ledger_entries"):
            rows = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            # a partitioned table's own size is 0: sum its partitions (none listed for a plain table)
            size = conn.execute(
                "SELECT pg_size_pretty(coalesce(sum(pg_total_relation_size(relid)),"
                " pg_total_relation_size(%s))) FROM pg_partition_tree(%s)",
                (table, table),
            ).fetchone()
            out[f"{table}_rows"] = rows[0] if rows else 0
            out[f"{table}_size"] = size[0] if size else "?"
        return out


# the day partitions of the last 30 days (a fresh database has them from a week back)
_PAST_PARTITIONS = """
SELECT partman.create_partition_time('public.usage_settlements',
    ARRAY(SELECT generate_series(date_trunc('day', now()) - interval '31 days', now(), interval '1 day')))
"""


def load(cfg: StackConfig, rows: int, orgs: int, chunk: int) -> dict[str, Any]:
    spent = {"usage_settlements_s": 0.0, "ledger_entries_s": 0.0}
    with psycopg.connect(dsn(cfg), autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL timezone = 'UTC'")  # partition bounds follow the session's zone
            conn.execute(_PAST_PARTITIONS)
        for first in range(0, rows, chunk):
            params = {"orgs": orgs, "first": first, "last": min(first + chunk, rows) - 1}
            t0 = time.perf_counter()
            conn.execute(_LOAD_SETTLEMENTS, params)
            t1 = time.perf_counter()
            conn.execute(_LOAD_LEDGER, params)
            t2 = time.perf_counter()
            spent["usage_settlements_s"] += t1 - t0
            spent["ledger_entries_s"] += t2 - t1
            print(f"  rows {first:,}..{params['last']:,}: {t1 - t0:.1f} s + {t2 - t1:.1f} s", flush=True)
        conn.execute("ANALYZE usage_settlements")
        conn.execute("ANALYZE ledger_entries")
    return {"rows": rows, "orgs": orgs, **{k: round(v, 1) for k, v in spent.items()}}


def unload(cfg: StackConfig) -> None:
    with psycopg.connect(dsn(cfg), autocommit=True) as conn:
        conn.execute("DELETE FROM usage_settlements WHERE event_id LIKE 'bench\\_%%'")
        # the ledger is append-only (a trigger refuses UPDATE and DELETE): lifted for the bench's own
        # rows only, inside one transaction, so no other writer ever sees it lifted
        with conn.transaction():
            conn.execute("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only")
            conn.execute("DELETE FROM ledger_entries WHERE ref LIKE 'bench\\_%%'")
            conn.execute("ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_append_only")
        for table in ("wallets", "spend_counters", "cost_daily"):
            conn.execute(f"DELETE FROM {table} WHERE org_id LIKE 'bench\\_%%'")
        conn.execute("VACUUM ANALYZE usage_settlements")
        conn.execute("VACUUM ANALYZE ledger_entries")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--cpu-events", type=int, default=20_500)
    parser.add_argument("--keep", action="store_true", help="keep the loaded rows")
    args = parser.parse_args()

    stack = Stack(StackConfig.from_env(profile=os.environ.get("TOLLGATE_PROFILE", "test")))
    stack.up(local_model=False)
    cfg = stack.cfg
    fund(cfg)
    print("settlement CPU per event, tables as they are ...", flush=True)
    small = {"tables": table_sizes(cfg), **asyncio.run(settle_cpu(cfg, args.cpu_events, args.rows))}
    print(json.dumps(small), flush=True)
    print(f"loading {args.rows:,} settlements and ledger entries ...", flush=True)
    loaded = load(cfg, args.rows, args.orgs, args.chunk)
    print(json.dumps(loaded), flush=True)
    print("settlement CPU per event, next to the big tables ...", flush=True)
    big = {"tables": table_sizes(cfg), **asyncio.run(settle_cpu(cfg, args.cpu_events, args.rows))}
    print(json.dumps(big), flush=True)
    if not args.keep:
        print("deleting the loaded rows ...", flush=True)
        unload(cfg)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "settle_cpu_small": small,
        "load": loaded,
        "settle_cpu_big": big,
    }
    out = Path(cfg.root / "bench" / "billing_scale_results.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
