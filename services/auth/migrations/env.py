"""Alembic environment for auth's database (sync psycopg; the service calls it in a thread)."""

import tollgate.auth.accounts.models
import tollgate.auth.audit.models
import tollgate.auth.grants.models
import tollgate.auth.groups.models
import tollgate.auth.guard.models
import tollgate.auth.keys.models
import tollgate.auth.limits.models
import tollgate.auth.orgs.models
import tollgate.auth.sessions.models  # noqa: F401  (registers the tables on Base.metadata)
from tollgate.auth.config import AuthSettings
from tollgate.auth.database import Base
from tollgate.common.migrations import run_alembic_env

run_alembic_env(Base.metadata, AuthSettings().database_url, "auth")
