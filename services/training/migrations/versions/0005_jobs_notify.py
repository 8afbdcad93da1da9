"""jobs announce their changes: NOTIFY training_jobs after a job is created, or its status or cancel
flag changes

The worker LISTENs and runs its round at once (a new job starts without waiting for the next poll);
with nothing running it polls every TRAINING_IDLE_POLL_INTERVAL_S instead of every 0.5 s.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 21:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION training_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('training_jobs', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER training_jobs_notify AFTER INSERT OR UPDATE OF status, cancel_requested"
        " ON training_jobs FOR EACH STATEMENT EXECUTE FUNCTION training_jobs_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER training_jobs_notify ON training_jobs")
    op.execute("DROP FUNCTION training_jobs_notify()")
