"""ORM base, migrations to head at start, and the readiness ping."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase

log = logging.getLogger(__name__)

# Deterministic constraint names, so autogenerate/`alembic check` compare cleanly.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def alembic_config(ini_path: Path, database_url: str) -> Config:
    config = Config(str(ini_path))
    # '%' is interpolation syntax in ini files; a password may contain one.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    # The service has already configured JSON logging; env.py must not replace it.
    config.attributes["configure_logger"] = False
    return config


def migrate_to_head(ini_path: Path, database_url: str) -> None:
    """Blocking (sync psycopg): call it in a thread. env.py serialises concurrent starters."""
    command.upgrade(alembic_config(ini_path, database_url), "head")
    log.info("database migrated to head")


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
