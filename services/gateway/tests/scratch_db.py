"""Scratch databases for the gateway's tests that need PostgreSQL: one per fixture, migrated to head,
on the test stack's server (GATEWAY_TEST_ADMIN_URL, the test profile's by default), dropped after."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tollgate.common.migrations import upgrade_to_head
from tollgate.gateway.db import alembic_ini

ADMIN_DSN = os.environ.get("GATEWAY_TEST_ADMIN_URL", "postgresql://tollgate@127.0.0.1:25532/postgres")


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """The SQLAlchemy URL of a new database named `prefix` plus a random suffix."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    try:
        upgrade_to_head(alembic_ini(), url)
        yield url
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
