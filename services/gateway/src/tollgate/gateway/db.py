"""Runs the gateway's Alembic migrations to head (blocking: call it in a thread)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

# services/gateway/alembic.ini, next to src/ (the service is installed from its source tree).
DEFAULT_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


def run_migrations(database_url: str) -> None:
    ini = Path(os.environ.get("GATEWAY_ALEMBIC_INI", DEFAULT_INI))
    config = Config(str(ini))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")
