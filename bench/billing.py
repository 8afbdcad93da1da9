"""`make bench` (billing part): the usage consumer's throughput and the gateway-to-ledger lag.

Brings up the stack (the `test` profile unless TOLLGATE_PROFILE says otherwise), then measures:
- throughput: with the billing worker stopped, N usage events (the real UsageRecorded contract,
  keyed by org) are published to usage.v1 across many funded organisations; the worker is started
  and its own counter (billing_usage_settled_total: DB committed, Redis updated, offsets
  committed) is polled from its first settled batch to the last event, everything it does per
  batch included (wallets, ledger, budget counters, alerts, Redis); the ledger is checked after;
- end-to-end lag: an open-loop driver sends chat completions through the gateway at a fixed rate
  (each request scheduled at t0 + i / rate, whatever the answers do), records each request id and
  the wall-clock time of its answer; a poller thread watches the ledger and stamps when each
  request's usage entry became visible. Lag = visible - answered, p50/p99/max.
Between the two it waits for every usage.v1 consumer group (billing, analytics) to catch up, so
the throughput backlog does not compete with the lag run. Writes bench/billing_results.json;
docs/benchmarks.md records the numbers with context.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from loadgen import LoadGen

from tollgate.common.kafka import TOPIC_USAGE
from tollgate.contracts.v1 import events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import register_model
from tollgate.devstack.usage_events import publish_async

EVENTS = int(os.environ.get("BENCH_BILLING_EVENTS", "50000"))
ORGS = int(os.environ.get("BENCH_BILLING_ORGS", "100"))
LAG_RPS = float(os.environ.get("BENCH_LAG_RPS", "500"))
LAG_SECONDS = float(os.environ.get("BENCH_LAG_SECONDS", "20"))
POLL_INTERVAL_S = 0.01
WORKER = "billing_worker"
USAGE_GROUPS = ("billing-usage", "analytics-usage")
BODY = {"model": "sim-bench", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 8}


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def billing_dsn(cfg: StackConfig) -> str:
    return cfg.database_url("billing").replace("postgresql+psycopg://", "postgresql://")


def funded_accounts(admin: httpx.Client, count: int) -> list[dict[str, Any]]:
    accounts = []
    for i in range(count):
        resp = admin.post("/admin/api-key/apply", json={"name": f"bench-billing-{i}-{uuid.uuid4().hex[:6]}"})
        resp.raise_for_status()
        body = resp.json()
        admin.post(
            "/admin/api-key/recharge", json={"api_key": body["api_key"], "balance": 1_000_000}
        ).raise_for_status()
        accounts.append(body)
    return accounts


async def _publish(bootstrap: str, events: list[events_pb2.UsageRecorded]) -> None:
    await publish_async(bootstrap, events, "bench-billing", linger_ms=20, max_batch_size=256 * 1024)


def consumer_throughput(stack: Stack, accounts: list[dict[str, Any]]) -> dict[str, float]:
    cfg = stack.cfg
    rng = random.Random(7)
    now = int(time.time() * 1000)
    events = []
    for _ in range(EVENTS):
        acc = rng.choice(accounts)
        event = events_pb2.UsageRecorded(
            event_id=f"bench_{uuid.uuid4().hex}",
            org_id=acc["org_id"],
            key_id=acc["id"],
            user_id=acc["user_id"],
            model="sim-bench",
            provider="openai-compatible",
            tokens_in=20,
            tokens_out=40,
            cost_micros=rng.randint(1, 2000),
            latency_ms=3,
            status="ok",
            started_at_unix_ms=now - 3,
            finished_at_unix_ms=now,
            endpoint="/v1/chat/completions",
            operation="chat",
        )
        events.append(event)
    ids = [e.event_id for e in events]
    stack.stop_service(WORKER)  # SIGTERM: it leaves the group cleanly, its restart rejoins at once
    try:
        published = time.perf_counter()
        asyncio.run(_publish(cfg.kafka_bootstrap, events))
        publish_s = time.perf_counter() - published
    finally:
        started = time.perf_counter()
        stack.start_service(WORKER)
    # the restarted worker's own counter: events settled (committed, Redis updated, offsets committed)
    first_seen, first_count = 0.0, 0.0
    deadline = time.monotonic() + 600
    while (count := worker_settled(cfg)) < len(ids):
        if not first_seen and count > 0:
            first_seen, first_count = time.perf_counter(), count
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count} of {len(ids)} events settled after 600 s")
        time.sleep(0.02)
    done = time.perf_counter()
    with psycopg.connect(billing_dsn(cfg), autocommit=True) as conn:
        entries = conn.execute(
            "SELECT count(*) FROM ledger_entries WHERE kind = 'usage' AND ref = ANY(%s)", (ids,)
        ).fetchone()
    assert entries and entries[0] == len(ids), f"{entries} ledger entries for {len(ids)} events"
    return {
        "events": len(ids),
        "orgs": len(accounts),
        "publish_s": round(publish_s, 2),
        "settle_s": round(done - first_seen, 3),
        "events_per_s": round((len(ids) - first_count) / (done - first_seen)),
        "start_to_drained_s": round(done - started, 2),
    }


def worker_settled(cfg: StackConfig) -> float:
    """billing_usage_settled_total of the running worker (0 after a restart)."""
    try:
        text = httpx.get(cfg.metrics_url(WORKER), timeout=5).text
    except httpx.HTTPError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("billing_usage_settled_total "):
            return float(line.split()[1])
    return 0.0


async def _group_lag(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
        ends = await consumer.end_offsets([tp for tp in committed if tp.topic == TOPIC_USAGE])
        return sum(end - committed[tp].offset for tp, end in ends.items())
    finally:
        await consumer.stop()
        await admin.close()


def wait_for_usage_consumers(cfg: StackConfig, timeout: float = 600) -> float:
    """Waits until every usage.v1 consumer group (billing, analytics) has caught up: a backlog
    left by the throughput run would otherwise compete with the lag run for the two cores."""
    began = time.monotonic()
    for group in USAGE_GROUPS:
        while (lag := asyncio.run(_group_lag(cfg.kafka_bootstrap, group))) > 0:
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"{group} still {lag} records behind after {timeout:.0f} s")
            time.sleep(1)
    return time.monotonic() - began


class LedgerWatcher(threading.Thread):
    """Stamps the wall-clock time at which each usage entry of the watched orgs becomes visible."""

    def __init__(self, dsn: str, org_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self._dsn, self._orgs = dsn, org_ids
        self.seen: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        watermark = 0
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            watermark = conn.execute("SELECT coalesce(max(id), 0) FROM ledger_entries").fetchone()[0]  # type: ignore[index]
            high = watermark
            while not self.stop.is_set():
                # ids are taken at insert, commits may land out of id order: look back a margin
                rows = conn.execute(
                    "SELECT id, ref FROM ledger_entries"
                    " WHERE org_id = ANY(%s) AND kind = 'usage' AND id > %s",
                    (self._orgs, max(watermark, high - 5000)),
                ).fetchall()
                now = time.time()
                for entry_id, ref in rows:
                    self.seen.setdefault(ref, now)
                    high = max(high, entry_id)
                time.sleep(POLL_INTERVAL_S)


def end_to_end_lag(cfg: StackConfig, accounts: list[dict[str, Any]]) -> dict[str, float]:
    keys = [a["api_key"] for a in accounts]
    for key in keys:  # warm principal caches and connections
        httpx.post(
            f"{cfg.url('gateway')}/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
        )
    watcher = LedgerWatcher(billing_dsn(cfg), [a["org_id"] for a in accounts])
    watcher.start()
    gen = LoadGen(f"{cfg.url('gateway')}/v1/chat/completions", json.dumps(BODY).encode(), keys)
    began = time.perf_counter()
    samples = asyncio.run(gen.run(LAG_RPS, LAG_SECONDS))
    elapsed = time.perf_counter() - began
    ok = [s for s in samples if s.status == 200]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(s.request_id not in watcher.seen for s in ok):
        time.sleep(0.1)
    watcher.stop.set()
    watcher.join()
    lags = [(watcher.seen[s.request_id] - s.answered) * 1000 for s in ok if s.request_id in watcher.seen]
    latencies = [(s.answered - s.due) * 1000 for s in ok]
    return {
        "target_rps": LAG_RPS,
        "achieved_rps": round(len(samples) / elapsed, 1),
        "requests": len(samples),
        "errors": len(samples) - len(ok),
        "never_seen_in_ledger": len(ok) - len(lags),
        "lag_p50_ms": round(percentile(lags, 50), 1),
        "lag_p99_ms": round(percentile(lags, 99), 1),
        "lag_max_ms": round(max(lags), 1),
        "gateway_p50_ms": round(percentile(latencies, 50), 2),
        "gateway_p99_ms": round(percentile(latencies, 99), 2),
        "poll_interval_ms": POLL_INTERVAL_S * 1000,
    }


def main() -> int:
    stack = Stack(StackConfig.from_env(profile=os.environ.get("TOLLGATE_PROFILE", "test")))
    stack.up(local_model=False)
    cfg = stack.cfg
    admin = httpx.Client(
        base_url=cfg.url("gateway"), headers={"Authorization": f"Bearer {cfg.admin_api_key}"}, timeout=30
    )
    register_model(admin, "sim-bench", "sim-bench", cfg.url("upstream_sim"), price_in=0.01, price_out=0.01)
    print(f"funding {ORGS} organisations ...", flush=True)
    accounts = funded_accounts(admin, ORGS)
    print(f"consumer throughput: {EVENTS} events ...", flush=True)
    throughput = consumer_throughput(stack, accounts)
    print(json.dumps(throughput), flush=True)
    throughput["consumers_caught_up_after_s"] = round(wait_for_usage_consumers(cfg), 1)
    print(f"end-to-end lag at {LAG_RPS:.0f} requests/s for {LAG_SECONDS:.0f} s ...", flush=True)
    lag = end_to_end_lag(cfg, accounts[:8])
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "consumer_throughput": throughput,
        "end_to_end_lag": lag,
    }
    Path(cfg.root / "bench" / "billing_results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(
        f"\nbilling consumer: {throughput['events_per_s']} events/s settled (target >= 5000); "
        f"gateway answer -> ledger entry at {lag['achieved_rps']} req/s: p50 {lag['lag_p50_ms']} ms, "
        f"p99 {lag['lag_p99_ms']} ms (target < 1000)"
    )
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
