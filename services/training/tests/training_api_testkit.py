"""The training API on a scratch database with fake auth and billing, as the API tests drive it
(the `api` fixture in conftest.py builds it): a client, the fakes, and helpers to look inside."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from training_testkit import FakeAuth, FakeHolds, fake_gguf, jsonl

from tollgate.training.app import build_app
from tollgate.training.config import TrainingSettings
from tollgate.training.events.models import OutboxRecord
from tollgate.training.files.service import FileService
from tollgate.training.files.storage import FileStorage
from tollgate.training.jobs.service import JobService
from tollgate.training.vectors.indexes import IndexCache, IndexMetrics
from tollgate.training.vectors.service import VectorService


@dataclass
class Api:
    client: httpx.AsyncClient
    holds: FakeHolds
    auth: FakeAuth
    sessions: async_sessionmaker[AsyncSession]
    data_dir: Path

    def as_org(self, org: str) -> dict[str, str]:
        return {"Authorization": f"Bearer key-{org}"}

    async def count(self, model: type) -> int:
        async with self.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(model))).scalar_one())

    async def outbox(self) -> list[OutboxRecord]:
        async with self.sessions() as session:
            return list((await session.execute(select(OutboxRecord).order_by(OutboxRecord.id))).scalars())


@asynccontextmanager
async def open_api(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> AsyncIterator[Api]:
    """The app with the base model `tiny-base` registered (by the platform admin)."""
    settings = TrainingSettings(data_dir=tmp_path / "data", max_file_lines=100)
    holds, auth = FakeHolds(), FakeAuth()
    files = FileService(FileStorage(settings.files_dir), max_bytes=64 * 1024, max_lines=100, max_seq_len=64)
    registry = CollectorRegistry()
    app = build_app(
        settings=settings,
        registry=registry,
        sessions=sessions,
        auth_client=auth,
        files=files,
        jobs=JobService(holds),
        vectors=VectorService(IndexCache(settings.vectors_dir, IndexMetrics(registry), sessions)),
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://training"
    ) as client:
        base = await client.post(
            "/models",
            headers={"Authorization": "Bearer admin"},
            json={
                "name": "tiny-base",
                "type": "base_model",
                "config": {"source": str(fake_gguf(tmp_path / "models"))},
                "pricing": {"training": 2.0},
            },
        )
        assert base.status_code == 201, base.text
        yield Api(client, holds, auth, sessions, settings.data_dir)


async def upload(api: Api, org: str = "a", data: bytes = jsonl()) -> httpx.Response:
    return await api.client.post(
        "/v1/files",
        headers=api.as_org(org),
        files={"file": ("train.jsonl", data)},
        data={"purpose": "fine-tune"},
    )
