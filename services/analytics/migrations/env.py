"""Alembic environment for the analytics database (sync psycopg 3; run in a thread by the service)."""

import tollgate.analytics.usage.models  # noqa: F401  (registers the tables on Base.metadata)
from tollgate.analytics.config import AnalyticsSettings
from tollgate.analytics.db import Base
from tollgate.common.migrations import run_alembic_env

run_alembic_env(Base.metadata, AnalyticsSettings().database_url, "analytics")
