"""`python -m tollgate.training.migrate`: its database to head (tollgate.common.migrations.migrate_cli)."""

from __future__ import annotations

from tollgate.common.migrations import migrate_cli
from tollgate.training.config import TrainingSettings


def main() -> None:
    settings = TrainingSettings()
    migrate_cli("training", settings.alembic_ini, settings.database_url, settings.log_level)


if __name__ == "__main__":
    main()
