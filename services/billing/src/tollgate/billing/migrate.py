"""Where billing's Alembic configuration lives, and `python -m tollgate.billing.migrate`: billing's
database migrated to head, then exit. What the Kubernetes `migrate` Job runs
(deploy/k8s/base/migrate-job.yaml), while the billing Deployments start with
BILLING_RUN_MIGRATIONS=false; the Alembic env's advisory lock makes concurrent runs safe."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tollgate.billing.config import BillingSettings
from tollgate.common.logging import configure_logging
from tollgate.common.migrations import migrate

# services/billing/alembic.ini, found from this file: src/tollgate/billing/migrate.py
DEFAULT_ALEMBIC_INI = str(Path(__file__).resolve().parents[3] / "alembic.ini")


def main() -> None:
    settings = BillingSettings()
    configure_logging("billing-migrate", settings.log_level)
    asyncio.run(migrate(settings.alembic_ini or DEFAULT_ALEMBIC_INI, settings.database_url))


if __name__ == "__main__":
    main()
