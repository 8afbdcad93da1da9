"""Runs billing's Alembic migrations to head (sync psycopg; call it in a thread from async code)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

# services/billing/alembic.ini, found from this file: src/tollgate/billing/migrate.py
DEFAULT_ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


def upgrade_to_head(database_url: str, alembic_ini: str = "") -> None:
    config = Config(alembic_ini or str(DEFAULT_ALEMBIC_INI))
    # configparser interpolation: a literal % in a URL (encoded password) must be doubled.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")
