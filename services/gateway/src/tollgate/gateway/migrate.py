"""`python -m tollgate.gateway.migrate`: its database to head (tollgate.common.migrations.migrate_cli)."""

from __future__ import annotations

from tollgate.common.migrations import migrate_cli
from tollgate.gateway.config import GatewaySettings
from tollgate.gateway.db import alembic_ini


def main() -> None:
    settings = GatewaySettings()
    migrate_cli("gateway", alembic_ini(), settings.database_url, settings.log_level)


if __name__ == "__main__":
    main()
