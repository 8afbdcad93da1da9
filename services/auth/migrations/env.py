"""Alembic environment for auth's database (sync psycopg; the service calls it in a thread)."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool, text

import tollgate.auth.accounts.models
import tollgate.auth.keys.models  # noqa: F401  (registers the tables on Base.metadata)
from tollgate.auth.database import Base

config = context.config
if config.config_file_name and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name)

target_metadata = Base.metadata

# Any number of auth replicas may start at once; one migrates, the others wait and find it done.
MIGRATION_LOCK_ID = 0x7467_6175  # "tgau"


def _url() -> str:
    if config.attributes.get("configure_logger", True) and os.environ.get("AUTH_DATABASE_URL"):
        return os.environ["AUTH_DATABASE_URL"]
    return str(config.get_main_option("sqlalchemy.url"))


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
