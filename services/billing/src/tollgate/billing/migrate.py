"""Where billing's Alembic configuration lives (the runner is tollgate.common.migrations)."""

from __future__ import annotations

from pathlib import Path

# services/billing/alembic.ini, found from this file: src/tollgate/billing/migrate.py
DEFAULT_ALEMBIC_INI = str(Path(__file__).resolve().parents[3] / "alembic.ini")
