"""Where billing's Alembic configuration lives, and `python -m tollgate.billing.migrate`: billing's
database to head (tollgate.common.migrations.migrate_cli)."""

from __future__ import annotations

from pathlib import Path

from tollgate.billing.config import BillingSettings
from tollgate.common.migrations import migrate_cli

# services/billing/alembic.ini, found from this file: src/tollgate/billing/migrate.py
DEFAULT_ALEMBIC_INI = str(Path(__file__).resolve().parents[3] / "alembic.ini")


def main() -> None:
    settings = BillingSettings()
    migrate_cli(
        "billing", settings.alembic_ini or DEFAULT_ALEMBIC_INI, settings.database_url, settings.log_level
    )


if __name__ == "__main__":
    main()
