"""`python -m tollgate.analytics.migrate`: analytics's database migrated to head, then exit. What the
Kubernetes `migrate` Job runs (deploy/k8s/base/migrate-job.yaml), while its Deployments start with
ANALYTICS_RUN_MIGRATIONS=false; the Alembic env's advisory lock makes concurrent runs safe."""

from __future__ import annotations

import asyncio

from tollgate.analytics.config import AnalyticsSettings
from tollgate.common.logging import configure_logging
from tollgate.common.migrations import migrate


def main() -> None:
    settings = AnalyticsSettings()
    configure_logging("analytics-migrate", settings.log_level)
    asyncio.run(migrate(settings.alembic_ini, settings.database_url))


if __name__ == "__main__":
    main()
