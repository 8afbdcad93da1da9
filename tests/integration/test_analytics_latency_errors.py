"""Latency percentiles, the recent-errors feed and filtered usage on the real stack: requests go
through the gateway to the upstream simulator (fast, 300 ms slow, and failing models), analytics
consumes their usage events, and the routes answer from the rollup by key and operation. The
percentiles are checked against the latencies the events carried (read from the stored facts), and
another organisation sees none of it."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from tollgate.analytics.usage.histogram import bucket_of, bucket_range
from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account, wait_until

SECRET = f"do-not-store-{uuid.uuid4().hex}"  # a prompt marker the error feed must never show


def _facts(config: StackConfig, org_id: str) -> list[tuple[str, str, int, str]]:
    dsn = config.database_url("analytics").replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT event_id, status, latency_ms, model FROM usage_events WHERE org_id = %s", (org_id,)
        ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


def _exact(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def _get(http: httpx.Client, key: str, path: str, **params: Any) -> dict[str, Any]:
    resp = http.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _chat(http: httpx.Client, key: str, model: str) -> httpx.Response:
    return http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": SECRET}], "max_tokens": 4},
        headers={"Authorization": f"Bearer {key}"},
    )


def test_latency_percentiles_errors_and_filters_follow_real_requests(
    new_account: Callable[..., Account], config: StackConfig, gateway_url: str
) -> None:
    owner, stranger = new_account(credits=1), new_account(credits=1)
    failed_ids: set[str] = set()
    with httpx.Client(base_url=gateway_url, timeout=60) as http:
        for model in ["sim-chat"] * 4 + ["sim-chat-slow"] * 3:
            assert _chat(http, owner.key, model).status_code == 200
        for _ in range(2):
            resp = _chat(http, owner.key, "sim-chat-error")
            assert resp.status_code >= 500, resp.text
            failed_ids.add(resp.headers["x-request-id"])

        wait_until(lambda: len(_facts(config, owner.org_id)) == 9, what="analytics to store the 9 facts")
        facts = _facts(config, owner.org_id)
        answered = [ms for _, status, ms, _ in facts if status == "ok"]
        assert len(answered) == 7
        assert {e for e, status, _, _ in facts if status != "ok"} == failed_ids

        latency = _get(http, owner.key, "/analytics/latency", group_by="model")
        assert latency["count"] == 7 and latency["max_ms"] == max(answered)
        for name, p in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)):
            lower, upper = bucket_range(bucket_of(_exact(answered, p)), max(answered))
            assert lower <= latency[name] <= upper, (name, sorted(answered), latency)
        by_model = {row["model_id"]: row for row in latency["breakdown"]}
        assert {m: r["count"] for m, r in by_model.items()} == {"sim-chat": 4, "sim-chat-slow": 3}
        slow = [ms for _, status, ms, model in facts if model == "sim-chat-slow"]
        assert by_model["sim-chat-slow"]["max_ms"] == max(slow) >= 300  # the simulator waits 300 ms
        filtered = _get(http, owner.key, "/analytics/latency", key_id=owner.key_id, operation="chat")
        assert filtered["count"] == 7
        assert _get(http, owner.key, "/analytics/latency", operation="embedding")["count"] == 0

        errors = _get(http, owner.key, "/analytics/errors", limit=1)
        assert errors["has_more"] and len(errors["data"]) == 1
        older = _get(http, owner.key, "/analytics/errors", before=errors["next_before"])
        feed = errors["data"] + older["data"]
        assert {e["request_id"] for e in feed} == failed_ids and not older["has_more"]
        assert feed[0]["created_at"] >= feed[1]["created_at"]
        for entry in feed:
            assert (entry["model"], entry["key_id"], entry["status"]) == (
                "sim-chat-error",
                owner.key_id,
                "upstream_error",
            )
            assert (entry["operation"], entry["endpoint"]) == ("chat", "/v1/chat/completions")
        assert SECRET not in str(feed)

        today = dt.datetime.now(dt.UTC).date().isoformat()
        usage = _get(
            http, owner.key, "/analytics/usage", start_date=today, key_id=owner.key_id, operation="chat"
        )
        assert usage["total_requests"] == 9 and usage["success_rate"] == round(7 / 9, 4)
        assert _get(http, owner.key, "/analytics/usage", operation="image")["total_requests"] == 0

        # another organisation: nothing of the owner's, even naming the owner's key
        assert _get(http, stranger.key, "/analytics/latency")["count"] == 0
        assert _get(http, stranger.key, "/analytics/latency", key_id=owner.key_id)["count"] == 0
        assert _get(http, stranger.key, "/analytics/errors")["data"] == []
        assert _get(http, stranger.key, "/analytics/usage", key_id=owner.key_id)["total_requests"] == 0
