"""`python -m tollgate.gateway.migrate`: the gateway's database migrated to head, then exit. What the
Kubernetes `migrate` Job runs (deploy/k8s/base/migrate-job.yaml), while its Deployments start with
GATEWAY_RUN_MIGRATIONS=false; the Alembic env's advisory lock makes concurrent runs safe."""

from __future__ import annotations

import asyncio

from tollgate.common.logging import configure_logging
from tollgate.common.migrations import migrate
from tollgate.gateway.config import GatewaySettings
from tollgate.gateway.db import alembic_ini


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway-migrate", settings.log_level)
    asyncio.run(migrate(alembic_ini(), settings.database_url))


if __name__ == "__main__":
    main()
