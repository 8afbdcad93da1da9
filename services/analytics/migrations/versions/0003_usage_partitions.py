"""usage facts partitioned by day (pg_partman) with retention, and an hourly rollup

`usage_events` becomes a table partitioned by range of `created_at` (one partition per UTC day), kept
by pg_partman: future partitions made ahead, expired ones dropped (`ANALYTICS_USAGE_RETENTION_DAYS`,
applied by the service's maintenance task). A unique index on a partitioned table must hold the
partition key, so the key is (event_id, created_at): `created_at` is the event's own finish time,
the same in every copy of an event, so a redelivered event lands in the same partition and conflicts
there. `usage_hourly` (partitioned by month, its own retention) is backfilled from the facts;
`usage_daily` is unchanged and kept for ever (one row per org, day and model).

A populated database is migrated in place: the old table is renamed, its rows copied into the
partitions (created back to its oldest day), then dropped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FACT_COLUMNS = """
    event_id text NOT NULL,
    org_id text NOT NULL,
    key_id bigint NOT NULL,
    user_id text NOT NULL,
    model text NOT NULL,
    provider text NOT NULL,
    tokens_in bigint NOT NULL,
    tokens_out bigint NOT NULL,
    cost_micros bigint NOT NULL,
    latency_ms bigint NOT NULL,
    status text NOT NULL,
    stream boolean NOT NULL,
    created_at timestamptz NOT NULL,
    tokens_cached_in bigint NOT NULL DEFAULT 0,
    tokens_cache_write bigint NOT NULL DEFAULT 0,
    tokens_reasoning bigint NOT NULL DEFAULT 0
"""

_COLUMN_LIST = (
    "event_id, org_id, key_id, user_id, model, provider, tokens_in, tokens_out, cost_micros, latency_ms,"
    " status, stream, created_at, tokens_cached_in, tokens_cache_write, tokens_reasoning"
)

# Errors are counted as the service does (tollgate.analytics.usage.service.SUCCESS_STATUSES).
_BACKFILL_HOURLY = """
    INSERT INTO usage_hourly (hour, org_id, model, requests, errors, tokens_in, tokens_out, cost_micros,
                              latency_ms_sum, tokens_cached_in, tokens_cache_write, tokens_reasoning)
    SELECT date_trunc('hour', created_at), org_id, model, count(*),
           count(*) FILTER (WHERE status NOT IN ('ok', 'client_disconnected')),
           sum(tokens_in), sum(tokens_out), sum(cost_micros), sum(latency_ms),
           sum(tokens_cached_in), sum(tokens_cache_write), sum(tokens_reasoning)
    FROM usage_events
    GROUP BY 1, 2, 3
"""


def upgrade() -> None:
    # Partition bounds and date_trunc follow the session's time zone: days and hours are UTC.
    op.execute("SET LOCAL timezone = 'UTC'")
    op.execute("CREATE SCHEMA IF NOT EXISTS partman")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman")

    op.execute("ALTER TABLE usage_events RENAME TO usage_events_unpartitioned")
    op.execute("ALTER INDEX ix_usage_events_org_created RENAME TO ix_usage_events_unpartitioned_org")
    op.execute(
        f"""
        CREATE TABLE usage_events ({_FACT_COLUMNS},
            CONSTRAINT pk_usage_events PRIMARY KEY (event_id, created_at)
        ) PARTITION BY RANGE (created_at)
        """
    )
    op.execute("CREATE INDEX ix_usage_events_org_created ON usage_events (org_id, created_at)")
    # Partitions from the oldest stored fact's day (a week back on a fresh database: events replayed
    # from Kafka, kept 7 days, still find theirs), 7 days made ahead; later days by maintenance.
    op.execute(
        """
        SELECT partman.create_parent(
            p_parent_table => 'public.usage_events', p_control => 'created_at', p_type => 'native',
            p_interval => 'daily', p_premake => 7, p_jobmon => false,
            p_start_partition => to_char(
                least((SELECT min(created_at) FROM usage_events_unpartitioned), now() - interval '7 days'),
                'YYYY-MM-DD'))
        """
    )
    op.execute(
        "UPDATE partman.part_config SET retention = '90 days', retention_keep_table = false,"
        " infinite_time_partitions = true WHERE parent_table = 'public.usage_events'"
    )
    op.execute(
        f"INSERT INTO usage_events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM usage_events_unpartitioned"
    )
    op.execute("DROP TABLE usage_events_unpartitioned")

    op.execute(
        """
        CREATE TABLE usage_hourly (
            hour timestamptz NOT NULL,
            org_id text NOT NULL,
            model text NOT NULL,
            requests bigint NOT NULL,
            errors bigint NOT NULL,
            tokens_in bigint NOT NULL,
            tokens_out bigint NOT NULL,
            cost_micros bigint NOT NULL,
            latency_ms_sum bigint NOT NULL,
            tokens_cached_in bigint NOT NULL DEFAULT 0,
            tokens_cache_write bigint NOT NULL DEFAULT 0,
            tokens_reasoning bigint NOT NULL DEFAULT 0,
            CONSTRAINT pk_usage_hourly PRIMARY KEY (org_id, hour, model)
        ) PARTITION BY RANGE (hour)
        """
    )
    op.execute(
        """
        SELECT partman.create_parent(
            p_parent_table => 'public.usage_hourly', p_control => 'hour', p_type => 'native',
            p_interval => 'monthly', p_premake => 2, p_jobmon => false,
            p_start_partition => to_char(
                least((SELECT min(created_at) FROM usage_events), now() - interval '7 days'), 'YYYY-MM-01'))
        """
    )
    op.execute(
        "UPDATE partman.part_config SET retention = '400 days', retention_keep_table = false,"
        " infinite_time_partitions = true WHERE parent_table = 'public.usage_hourly'"
    )
    op.execute(_BACKFILL_HOURLY)


def downgrade() -> None:
    op.execute("SET LOCAL timezone = 'UTC'")
    op.execute(
        "DELETE FROM partman.part_config WHERE parent_table IN ('public.usage_events', 'public.usage_hourly')"
    )
    op.execute("DROP TABLE usage_hourly")
    op.execute(
        "DROP TABLE IF EXISTS partman.template_public_usage_events, partman.template_public_usage_hourly"
    )
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_partitioned")
    op.execute("ALTER INDEX ix_usage_events_org_created RENAME TO ix_usage_events_partitioned_org")
    op.execute(f"CREATE TABLE usage_events ({_FACT_COLUMNS}, PRIMARY KEY (event_id))")
    op.execute("CREATE INDEX ix_usage_events_org_created ON usage_events (org_id, created_at)")
    # Copies of one event in two partitions are impossible (same created_at), so event_id stays unique.
    op.execute(
        f"INSERT INTO usage_events ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM usage_events_partitioned"
    )
    op.execute("DROP TABLE usage_events_partitioned")
    # Other tables may still be kept by pg_partman (later migrations): drop it only when unused.
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
