"""Usage storage at scale on the real stack: facts from Kafka land in their UTC day's partition,
the rollups `/analytics/usage` and `/cost/stats` read equal the raw facts (every event delivered
twice), and the running analytics service drops a partition past its retention by itself."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from tollgate.contracts.v1 import events_pb2
from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, billing_db, settled_events, wait_until
from tollgate.devstack.usage_events import publish


def analytics_db(config: StackConfig) -> psycopg.Connection[Any]:
    dsn = config.database_url("analytics").replace("postgresql+psycopg://", "postgresql://")
    return psycopg.connect(dsn, autocommit=True)


def _event(account: Account, i: int, at: dt.datetime) -> events_pb2.UsageRecorded:
    ms = int(at.timestamp() * 1000)
    return events_pb2.UsageRecorded(
        event_id=f"req_{uuid.uuid4().hex}",
        org_id=account.org_id,
        key_id=account.key_id,
        user_id=account.user_id,
        model=("sim-chat", "sim-flat-slow")[i % 2],
        provider="openai-compatible",
        tokens_in=3 + i,
        tokens_out=7 * i,
        cost_micros=100 + 13 * i,
        latency_ms=5 + i,
        status="ok" if i % 5 else "upstream_error",
        started_at_unix_ms=ms - 5,
        finished_at_unix_ms=ms,
        endpoint="/v1/chat/completions",
        operation="chat",
    )


def _stored(config: StackConfig, org_id: str) -> int:
    with analytics_db(config) as conn:
        row = conn.execute("SELECT count(*) FROM usage_events WHERE org_id = %s", (org_id,)).fetchone()
    return int(row[0]) if row else 0


def test_facts_land_in_day_partitions_and_reports_equal_the_raw_facts(
    new_account: Callable[..., Account], config: StackConfig, gateway_url: str
) -> None:
    account = new_account(credits=1)
    now = dt.datetime.now(dt.UTC)
    two_days_ago = now - dt.timedelta(days=2)
    events = [_event(account, i, now if i % 3 else two_days_ago) for i in range(30)]
    publish(config.kafka_bootstrap, events + events[::-1])  # every event twice
    wait_until(lambda: _stored(config, account.org_id) == 30, what="analytics to store the facts")
    wait_until(lambda: settled_events(config, account.org_id) == 30, what="billing to settle the events")

    with analytics_db(config) as conn:
        placed = conn.execute(
            "SELECT tableoid::regclass::text, (created_at AT TIME ZONE 'UTC')::date, count(*)"
            " FROM usage_events WHERE org_id = %s GROUP BY 1, 2",
            (account.org_id,),
        ).fetchall()
        raw = conn.execute(
            "SELECT count(*), sum(tokens_in + tokens_out), sum(cost_micros),"
            " count(*) FILTER (WHERE status <> 'ok') FROM usage_events WHERE org_id = %s",
            (account.org_id,),
        ).fetchone()
    assert {(p, f"usage_events_p{d:%Y_%m_%d}") for p, d, _ in placed} == {(p, p) for p, _, _ in placed}
    assert sum(n for _, _, n in placed) == 30 and len(placed) == 2
    assert raw is not None
    requests, tokens, cost, errors = raw
    assert requests == 30

    start, end = two_days_ago.date().isoformat(), now.date().isoformat()
    headers = {"Authorization": f"Bearer {account.key}"}
    for group_by in ("day", "hour", "model"):
        resp = httpx.get(
            f"{gateway_url}/analytics/usage",
            params={"start_date": start, "end_date": end, "group_by": group_by},
            headers=headers,
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["total_requests"] == requests, group_by
        assert body["total_tokens"] == tokens, group_by
        assert body["success_rate"] == round((requests - errors) / requests, 4)
        assert sum(b["requests"] for b in body["breakdown"]) == requests
        assert round(sum(b["cost"] for b in body["breakdown"]) * 1_000_000) == cost
        if group_by == "hour":
            assert all(b["hour"].endswith(":00:00Z") for b in body["breakdown"])

    stats = httpx.get(
        f"{gateway_url}/cost/stats",
        params={"start_date": start, "end_date": end},
        headers=headers,
        timeout=30,
    )
    assert stats.status_code == 200, stats.text
    with billing_db(config) as conn:
        settled = conn.execute(
            "SELECT count(*), sum(cost_micros) FROM usage_settlements WHERE org_id = %s", (account.org_id,)
        ).fetchone()
        # billing's settlement rows sit in their events' UTC day partitions too (billing migration 0007)
        partitions = conn.execute(
            "SELECT DISTINCT tableoid::regclass::text FROM usage_settlements WHERE org_id = %s",
            (account.org_id,),
        ).fetchall()
    assert settled == (30, cost)
    assert {p for (p,) in partitions} == {
        f"usage_settlements_p{two_days_ago:%Y_%m_%d}",
        f"usage_settlements_p{now:%Y_%m_%d}",
    }
    assert stats.json()["total_cost_micros"] == cost
    assert sum(d["requests"] for d in stats.json()["daily_stats"]) == 30
    by_day = {d["date"]: d["cost_micros"] for d in stats.json()["daily_stats"] if d["requests"]}
    assert by_day == {
        two_days_ago.date().isoformat(): sum(e.cost_micros for e in events[::3]),
        now.date().isoformat(): sum(e.cost_micros for i, e in enumerate(events) if i % 3),
    }


def test_the_running_service_drops_a_partition_past_retention(config: StackConfig) -> None:
    old = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=200)  # retention: 90 days by default
    name = f"usage_events_p{old:%Y_%m_%d}"
    with analytics_db(config) as conn:
        conn.execute(
            f"CREATE TABLE {name} PARTITION OF usage_events"
            f" FOR VALUES FROM ('{old} 00:00+00') TO ('{old + dt.timedelta(days=1)} 00:00+00')"
        )
        conn.execute(
            "INSERT INTO usage_events (event_id, org_id, key_id, user_id, model, provider, tokens_in,"
            " tokens_out, cost_micros, latency_ms, status, stream, created_at)"
            " VALUES ('expired', 'org_old', 1, 'u', 'm', 'p', 1, 1, 1, 1, 'ok', false, %s)",
            (dt.datetime.combine(old, dt.time(12), dt.UTC),),
        )

    def dropped() -> bool:
        with analytics_db(config) as conn:
            return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() == (None,)

    wait_until(dropped, timeout=30, what="maintenance to drop the expired partition")
    with analytics_db(config) as conn:
        assert conn.execute("SELECT count(*) FROM usage_events WHERE event_id = 'expired'").fetchone() == (0,)
        today = f"usage_events_p{dt.datetime.now(dt.UTC).date():%Y_%m_%d}"
        assert conn.execute("SELECT to_regclass(%s)::text", (today,)).fetchone() == (today,)
