"""The training API answers its health and metrics endpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from training_testkit import FakeAuth, FakeHolds

from tollgate.training.app import build_app
from tollgate.training.config import TrainingSettings
from tollgate.training.files.service import FileService
from tollgate.training.files.storage import FileStorage
from tollgate.training.jobs.service import JobService
from tollgate.training.vectors.indexes import IndexCache, IndexMetrics
from tollgate.training.vectors.service import VectorService


async def test_healthz_answers_ok_with_the_health_check_details(tmp_path: Path) -> None:
    async def healthy() -> dict[str, Any]:
        return {"database": "ok"}

    registry = CollectorRegistry()
    app = build_app(
        settings=TrainingSettings(data_dir=tmp_path),
        registry=registry,
        sessions=None,  # type: ignore[arg-type]  # no route that needs the database is called
        auth_client=FakeAuth(),
        files=FileService(FileStorage(tmp_path), max_bytes=1, max_lines=1, max_seq_len=16),
        jobs=JobService(FakeHolds()),
        vectors=VectorService(IndexCache(tmp_path / "vectors", IndexMetrics(registry), None)),  # type: ignore[arg-type]
        health_check=healthy,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://training") as c:
        health = await c.get("/healthz")
        public_metrics = await c.get("/metrics")

    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": "training", "database": "ok"}
    # the registry is served on the metrics port (runner.serve), never by the public app
    assert public_metrics.status_code == 404
    text = generate_latest(registry).decode()
    assert 'http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
