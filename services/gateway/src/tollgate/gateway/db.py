"""Where the gateway's Alembic configuration lives (the runner is tollgate.common.migrations)."""

from __future__ import annotations

import os
from pathlib import Path

# services/gateway/alembic.ini, next to src/ (the service is installed from its source tree).
DEFAULT_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


def alembic_ini() -> str:
    return os.environ.get("GATEWAY_ALEMBIC_INI", str(DEFAULT_INI))
