"""`python -m tollgate.auth.migrate`: auth's database migrated to head, then exit. What the
Kubernetes `migrate` Job runs (deploy/k8s/base/migrate-job.yaml), while its Deployments start with
AUTH_RUN_MIGRATIONS=false; the Alembic env's advisory lock makes concurrent runs safe."""

from __future__ import annotations

import asyncio

from tollgate.auth.config import AuthSettings
from tollgate.common.logging import configure_logging
from tollgate.common.migrations import migrate


def main() -> None:
    settings = AuthSettings()
    configure_logging("auth-migrate", settings.log_level)
    asyncio.run(migrate(str(settings.alembic_ini), settings.database_url))


if __name__ == "__main__":
    main()
