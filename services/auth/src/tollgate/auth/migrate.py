"""`python -m tollgate.auth.migrate`: its database to head (tollgate.common.migrations.migrate_cli)."""

from __future__ import annotations

from tollgate.auth.config import AuthSettings
from tollgate.common.migrations import migrate_cli


def main() -> None:
    settings = AuthSettings()
    migrate_cli("auth", str(settings.alembic_ini), settings.database_url, settings.log_level)


if __name__ == "__main__":
    main()
