"""What the storage benches share: a psycopg DSN for a service's database, and a consumer's CPU per
event counted in this process and in the PostgreSQL backend serving it (so index work counts)."""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.devstack.config import StackConfig


def dsn(cfg: StackConfig, db: str) -> str:
    return cfg.database_url(db).replace("postgresql+psycopg://", "postgresql://")


def backend_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` (a PostgreSQL backend), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_per_event(
    session: AsyncSession,
    payloads: Sequence[bytes],
    store: Callable[[AsyncSession, Sequence[bytes]], Awaitable[None]],
    batch: int,
) -> dict[str, Any]:
    """Stores `payloads` with `store` (one call per batch, each in its own transaction) over one
    connection and returns the CPU per event: this process plus the PostgreSQL backend serving it.
    The first batch warms up (statements prepared, caches loaded) and is not counted."""
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    await session.commit()
    await store(session, payloads[:batch])
    py0, db0, wall0 = time.process_time(), backend_cpu_s(pid), time.perf_counter()
    for start in range(batch, len(payloads), batch):
        await store(session, payloads[start : start + batch])
    py, db, wall = time.process_time() - py0, backend_cpu_s(pid) - db0, time.perf_counter() - wall0
    # one connection (pool of 1, used by one task): the same backend served every batch
    assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid
    stored = len(payloads) - batch
    return {
        "events": stored,
        "batch": batch,
        "python_cpu_ms_per_event": round(py * 1000 / stored, 4),
        "postgres_cpu_ms_per_event": round(db * 1000 / stored, 4),
        "total_cpu_ms_per_event": round((py + db) * 1000 / stored, 4),
        "wall_ms_per_event": round(wall * 1000 / stored, 4),
    }
