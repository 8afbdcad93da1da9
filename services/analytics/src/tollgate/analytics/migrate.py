"""`python -m tollgate.analytics.migrate`: its database to head (tollgate.common.migrations.migrate_cli)."""

from __future__ import annotations

from tollgate.analytics.config import AnalyticsSettings
from tollgate.common.migrations import migrate_cli


def main() -> None:
    settings = AnalyticsSettings()
    migrate_cli("analytics", settings.alembic_ini, settings.database_url, settings.log_level)


if __name__ == "__main__":
    main()
