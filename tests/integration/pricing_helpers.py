"""Shared by the pricing, credit chat and IndoxRouter integration tests: models registered with their own
upstream name (so the simulator's per-model counter proves whether the upstream was called while
other tests run), and the calls' costs read back from the real ledger."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def register(admin: httpx.Client, sim_url: str, name: str, upstream: str, **prices: Any) -> dict[str, Any]:
    """A catalog model on the simulator; `prices` are /admin/model/save's price fields (credits)."""
    body = {
        "name": name,
        "provider": "openai-compatible",
        "config": json.dumps({"base_url": f"{sim_url}/v1", "model": upstream, "api_key": "sk-sim-secret"}),
        **prices,
    }
    resp = admin.post("/admin/model/save", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def upstream_calls(sim_url: str, upstream: str) -> int:
    stats = httpx.get(f"{sim_url}/_sim/stats", timeout=5).json()
    return int(stats["by_model"].get(upstream, 0))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
