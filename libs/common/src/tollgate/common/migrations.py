"""The body of every service's Alembic env.py: migrate one database, one replica at a time."""

from __future__ import annotations

import asyncio
import zlib

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool, text

from tollgate.common.logging import configure_logging


def run_alembic_env(target_metadata: MetaData, default_url: str, lock_name: str) -> None:
    """Runs the migrations Alembic asked for (offline SQL or online against the database).

    Online runs hold a PostgreSQL advisory lock named after the service, so any number of
    replicas may start at once: one migrates, the others wait and then find nothing to do.
    """
    config = context.config
    url = config.get_main_option("sqlalchemy.url") or default_url
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    lock_id = zlib.crc32(f"tollgate-migrations:{lock_name}".encode())
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id})
            connection.commit()
            try:
                context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
                with context.begin_transaction():
                    context.run_migrations()
                connection.commit()
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id})
                connection.commit()
    finally:
        engine.dispose()


def alembic_config(alembic_ini: str, database_url: str) -> Config:
    config = Config(alembic_ini)
    # ConfigParser interpolates '%', which URL-encoded passwords may contain.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(alembic_ini: str, database_url: str) -> None:
    """Blocking: migrates one service's database to head (call it through `migrate`)."""
    command.upgrade(alembic_config(alembic_ini, database_url), "head")


async def migrate(alembic_ini: str, database_url: str) -> None:
    """Alembic is synchronous: run it in a thread so the event loop stays free."""
    await asyncio.to_thread(upgrade_to_head, alembic_ini, database_url)


def migrate_cli(service: str, alembic_ini: str, database_url: str, log_level: str = "INFO") -> None:
    """What `python -m tollgate.<service>.migrate` runs: the service's database migrated to head,
    then exit. The Kubernetes `migrate` Job (deploy/k8s/base/migrate-job.yaml) runs it while the
    Deployments start with <P>RUN_MIGRATIONS=false; the Alembic env's advisory lock makes
    concurrent runs safe."""
    configure_logging(f"{service}-migrate", log_level)
    asyncio.run(migrate(alembic_ini, database_url))
