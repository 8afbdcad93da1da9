"""A job in the scratch database as the API creates it (base model `tiny`, a stored file, the
estimated cost held by fake billing), for the worker and job-process tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from training_testkit import FakeHolds, fake_gguf, jsonl, principal

from tollgate.training.domain import Hyperparameters, Resources
from tollgate.training.files.repository import FileRepository
from tollgate.training.files.service import FileService
from tollgate.training.files.storage import FileStorage
from tollgate.training.jobs.service import JobRequest, JobService
from tollgate.training.registry.models import RegistryModel

HP = Hyperparameters(2, 4, 1e-3, 1.0, 0, 0, 8, 16, 0.0, 64)


async def new_job(sessions: async_sessionmaker[AsyncSession], tmp_path: Path, org: str = "a") -> str:
    async with sessions.begin() as session:
        if (await session.execute(select(RegistryModel).where(RegistryModel.name == "tiny"))).first() is None:
            session.add(
                RegistryModel(
                    id="model-base",
                    name="tiny",
                    type="base_model",
                    status="active",
                    source=str(fake_gguf(tmp_path)),
                    price_training_micros=1_000_000,
                    metrics={},
                )
            )
            await session.flush()
        files = FileService(FileStorage(tmp_path / "files"), max_bytes=10**6, max_lines=100, max_seq_len=64)
        stored = await files.store(
            FileRepository(session), org, "t.jsonl", "fine-tune", jsonl(), files.check(jsonl())
        )
        job = await JobService(FakeHolds()).create(
            session, principal(org), JobRequest("openai", "tiny", stored.id, None, HP, Resources())
        )
        return job.id
