"""Alembic environment for the analytics database (sync psycopg 3; run in a thread by the service)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import tollgate.analytics.usage.models  # noqa: F401  (registers the tables on Base.metadata)
from tollgate.analytics.config import AnalyticsSettings
from tollgate.analytics.db import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or AnalyticsSettings().database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
