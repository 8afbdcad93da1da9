"""Alembic environment for billing (sync psycopg 3; run in a thread by the service)."""

import os

from tollgate.billing.alerts import models as _alerts  # noqa: F401  (registers tables)
from tollgate.billing.budgets import models as _budgets  # noqa: F401
from tollgate.billing.db import Base
from tollgate.billing.payments import models as _payments  # noqa: F401  (registers tables)
from tollgate.billing.settlements import models as _settlements  # noqa: F401
from tollgate.billing.wallets import models as _wallets  # noqa: F401
from tollgate.common.migrations import run_alembic_env

run_alembic_env(
    Base.metadata,
    os.environ.get("BILLING_DATABASE_URL", "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_billing"),
    "billing",
)
