"""The bare training service answers its health and metrics endpoints."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from tollgate.training.app import build_app


async def test_healthz_answers_ok_with_the_health_check_details() -> None:
    async def healthy() -> dict[str, Any]:
        return {"database": "ok"}

    app = build_app(CollectorRegistry(), health_check=healthy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://training") as c:
        health = await c.get("/healthz")
        metrics = await c.get("/metrics")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": "training", "database": "ok"}
    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in metrics.text
