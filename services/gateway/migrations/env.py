"""Alembic environment for the gateway's own database (sync psycopg 3 driver)."""

from tollgate.common.migrations import run_alembic_env
from tollgate.gateway.bots import models as bot_models  # noqa: F401  (its tables join Base.metadata)
from tollgate.gateway.catalog.models import Base
from tollgate.gateway.config import GatewaySettings

run_alembic_env(Base.metadata, GatewaySettings().database_url, "gateway")
