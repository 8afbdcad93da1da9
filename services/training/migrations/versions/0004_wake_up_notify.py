"""wake-ups for the training loops: NOTIFY when outbox records are inserted, and when a job is
created or its status or cancel flag changes

The outbox relays and the worker LISTEN on these channels and run at once instead of polling (most
of the training processes' CPU when nothing happens). PostgreSQL sends a notification when the
writing transaction commits, whichever process wrote (API, worker, job process).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 20:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# trigger and function name, table, the statements that fire it, channel
TRIGGERS = [
    ("outbox_notify", "outbox", "INSERT", "training_outbox"),
    ("training_jobs_notify", "training_jobs", "INSERT OR UPDATE OF status, cancel_requested", "training_jobs"),
]


def upgrade() -> None:
    for name, table, events, channel in TRIGGERS:
        op.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('{channel}', '');
                RETURN NULL;
            END
            $$
            """
        )
        op.execute(f"CREATE TRIGGER {name} AFTER {events} ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    for name, table, _, _ in reversed(TRIGGERS):
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(f"DROP FUNCTION {name}()")
