"""Alembic environment for the training database (sync psycopg 3; run in a thread by the service)."""

from tollgate.common.migrations import run_alembic_env
from tollgate.training.config import TrainingSettings
from tollgate.training.tables import Base

run_alembic_env(Base.metadata, TrainingSettings().database_url, "training")
