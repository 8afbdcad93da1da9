"""What the storage benches share: a psycopg DSN for a service's database, and the CPU time of the
PostgreSQL backend serving a connection (so index work done in the database counts per event)."""

from __future__ import annotations

import os
from pathlib import Path

from tollgate.devstack.config import StackConfig


def dsn(cfg: StackConfig, db: str) -> str:
    return cfg.database_url(db).replace("postgresql+psycopg://", "postgresql://")


def backend_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` (a PostgreSQL backend), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
