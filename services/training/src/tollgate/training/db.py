"""ORM base and the migration runner for the training database."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


def _upgrade_to_head(alembic_ini: str, database_url: str) -> None:
    cfg = Config(alembic_ini)
    # ConfigParser interpolates '%', which URL-encoded passwords may contain.
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(cfg, "head")


async def migrate(alembic_ini: str, database_url: str) -> None:
    """Alembic is synchronous: run it in a thread so the loop stays free (psycopg 3 serves both)."""
    await asyncio.to_thread(_upgrade_to_head, alembic_ini, database_url)
