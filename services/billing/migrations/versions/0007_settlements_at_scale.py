"""per-event tables at scale: usage_settlements by day (pg_partman), no global unique ref for usage

Settling an event inserted into two unique btrees spanning the whole history (the settlements'
primary key on the random event id, the ledger's unique (kind, ref)); at tens of millions of rows
each insert lands on a page far beyond shared_buffers (docs/benchmarks.md, "Billing's tables at
scale"). After this migration:

- `ledger_entries`: (kind, ref) stays unique for every kind but `usage` (recharges, refunds,
  adjustments and bonuses keep their guard); a usage entry is already made exactly once by its
  `usage_settlements` row, inserted in the same transaction;
- `usage_settlements` is partitioned by range of `event_day` (one partition per UTC day): UTC
  midnight of the event's own time (finish, else start). Every producer re-sends the first copy of
  an event unchanged (the gateway's spool and hold mark keep its bytes, training's outbox row is
  written once, the guard API stores its first report per Idempotency-Key: auth migration 0009), so
  a redelivered copy lands in the partition of its first copy and meets it on the primary key
  (event_id, event_day). Rows without a usable time go to the default partition with event_day =
  the epoch; settlement also refuses an event whose id is already in the default partition,
  whatever its time (docs/billing.md, "Exactly-once settlement at scale"). pg_partman makes the
  coming days' partitions and drops the ones past `BILLING_SETTLEMENT_RETENTION_DAYS` (billing's
  worker runs its maintenance).

A populated database is migrated in place: the settled events' own times were never stored, so the
old rows move to the default partition with event_day = the epoch, where a late copy of any of
them is still recognised by its id; maintenance deletes them once they are older than the retention.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = """
    event_id text NOT NULL,
    org_id text NOT NULL,
    key_id bigint,
    hold_id text,
    model text,
    cost_micros bigint NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    event_day timestamptz NOT NULL
"""
_OLD_COLUMNS = "event_id, org_id, key_id, hold_id, model, cost_micros, status, created_at"
EPOCH = "1970-01-01 00:00:00+00"


def upgrade() -> None:
    op.execute("SET LOCAL timezone = 'UTC'")  # partition bounds follow the session's time zone
    op.execute(
        "CREATE UNIQUE INDEX uq_ledger_entries_kind_ref_not_usage ON ledger_entries (kind, ref)"
        " WHERE kind <> 'usage'"
    )
    op.execute("ALTER TABLE ledger_entries DROP CONSTRAINT uq_ledger_entries_kind_ref")

    op.execute("CREATE SCHEMA IF NOT EXISTS partman")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")
    op.execute("ALTER TABLE usage_settlements RENAME TO usage_settlements_unpartitioned")
    op.execute(
        f"""
        CREATE TABLE usage_settlements ({_COLUMNS},
            CONSTRAINT pk_usage_settlements PRIMARY KEY (event_id, event_day)
        ) PARTITION BY RANGE (event_day)
        """
    )
    # A week back (events replayed from Kafka, kept 7 days, find their day), 7 days ahead; later
    # days by maintenance. Default-partition data never moves the premade window (it holds the epoch).
    op.execute(
        """
        SELECT partman.create_parent(
            p_parent_table => 'public.usage_settlements', p_control => 'event_day', p_type => 'native',
            p_interval => 'daily', p_premake => 7, p_jobmon => false,
            p_start_partition => to_char(now() - interval '7 days', 'YYYY-MM-DD'))
        """
    )
    op.execute(
        "UPDATE partman.part_config SET retention = '35 days', retention_keep_table = false,"
        " infinite_time_partitions = true, ignore_default_data = true"
        " WHERE parent_table = 'public.usage_settlements'"
    )
    op.execute(
        f"INSERT INTO usage_settlements ({_OLD_COLUMNS}, event_day)"
        f" SELECT {_OLD_COLUMNS}, '{EPOCH}' FROM usage_settlements_unpartitioned"
    )
    op.execute("DROP TABLE usage_settlements_unpartitioned")


def downgrade() -> None:
    op.execute("SET LOCAL timezone = 'UTC'")
    op.execute("DELETE FROM partman.part_config WHERE parent_table = 'public.usage_settlements'")
    op.execute("DROP TABLE IF EXISTS partman.template_public_usage_settlements")
    op.execute("ALTER TABLE usage_settlements RENAME TO usage_settlements_partitioned")
    op.execute(
        """
        CREATE TABLE usage_settlements (
            event_id text PRIMARY KEY,
            org_id text NOT NULL,
            key_id bigint,
            hold_id text,
            model text,
            cost_micros bigint NOT NULL,
            status text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # One event may sit twice at most (default partition and its day): keep one row per id.
    op.execute(
        f"INSERT INTO usage_settlements ({_OLD_COLUMNS})"
        f" SELECT DISTINCT ON (event_id) {_OLD_COLUMNS} FROM usage_settlements_partitioned"
        " ORDER BY event_id, created_at"
    )
    op.execute("DROP TABLE usage_settlements_partitioned")
    op.execute(
        """
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM partman.part_config) THEN
                DROP EXTENSION pg_partman;
                DROP SCHEMA partman;
            END IF;
        END $$
        """
    )
    # Usage refs were unique (one entry per event): the global constraint holds again.
    op.execute("ALTER TABLE ledger_entries ADD CONSTRAINT uq_ledger_entries_kind_ref UNIQUE (kind, ref)")
    op.execute("DROP INDEX uq_ledger_entries_kind_ref_not_usage")
