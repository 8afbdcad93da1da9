"""Alembic environment for billing: sync psycopg, one advisory lock so parallel starts don't race."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, text

from tollgate.billing.db import Base
from tollgate.billing.payments import models as _payments  # noqa: F401  (registers tables)
from tollgate.billing.settlements import models as _settlements  # noqa: F401
from tollgate.billing.wallets import models as _wallets  # noqa: F401

config = context.config
target_metadata = Base.metadata

# Arbitrary constant: serialises migrations of this database across billing replicas.
_MIGRATION_LOCK_ID = 0x62696C6C


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("BILLING_DATABASE_URL", "")
    if not url:
        url = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_billing"
    return url


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(_url())
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
