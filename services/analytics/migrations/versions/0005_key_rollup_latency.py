"""usage by key and operation with latency histograms; failed requests indexed for the error feed

- `usage_events` gains `operation` (the gateway's: chat, completion, embedding, image, fine_tuning)
  and `endpoint`; facts stored before this revision count as `chat` with no endpoint.
- `usage_key_hourly` (org, UTC hour, key, operation, model): the sums of `usage_hourly` plus a
  histogram of answered requests' latency in fixed buckets (tollgate.analytics.usage.histogram) and
  the largest latency. Partitioned by month (pg_partman), kept as long as `usage_hourly`; backfilled
  from the facts still kept.
- `usage_latency_daily` (org, UTC day, model): the same histograms summed per day, kept for ever
  like `usage_daily`: unfiltered latency reports read at most a row per day and model. Backfilled
  from `usage_key_hourly`.
- a partial index on the facts holding failed requests only, newest first per org: the error feed
  reads a page of it without touching answered requests.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A copy of tollgate.analytics.usage.histogram.LATENCY_BOUNDS_MS as of this revision (a test keeps
# them equal); bucket of x = number of bounds below x = width_bucket(x - 1, bounds) for integers.
BOUNDS = (
    1, 2, 3, 4, 5, 6, 8,
    10, 12, 15, 20, 25, 30, 40, 50, 60, 80,
    100, 120, 150, 200, 250, 300, 400, 500, 600, 800,
    1_000, 1_200, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 8_000,
    10_000, 12_000, 15_000, 20_000, 25_000, 30_000, 40_000, 50_000, 60_000, 80_000,
    100_000, 120_000, 150_000, 200_000, 250_000, 300_000,
)  # fmt: skip
_BOUNDS_SQL = "ARRAY[" + ",".join(str(b) for b in BOUNDS) + "]::bigint[]"
_ANSWERED = "status IN ('ok', 'client_disconnected')"  # tollgate.analytics.usage.schemas.SUCCESS_STATUSES
_KEY = "hour, org_id, key_id, operation, model"

_BACKFILL = f"""
    WITH facts AS (
        SELECT date_trunc('hour', created_at) AS hour, org_id, key_id, operation, model, tokens_in,
               tokens_out, cost_micros, latency_ms, tokens_cached_in, tokens_cache_write,
               tokens_reasoning, {_ANSWERED} AS answered,
               width_bucket(latency_ms - 1, {_BOUNDS_SQL}) AS bucket
        FROM usage_events
    ), sums AS (
        SELECT {_KEY}, count(*) AS requests, count(*) FILTER (WHERE NOT answered) AS errors,
               sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out, sum(cost_micros) AS cost,
               sum(latency_ms) AS latency, sum(tokens_cached_in) AS cached,
               sum(tokens_cache_write) AS written, sum(tokens_reasoning) AS reasoning,
               coalesce(max(latency_ms) FILTER (WHERE answered), 0) AS max_ms
        FROM facts GROUP BY {_KEY}
    ), hist AS (
        SELECT {_KEY}, bucket, count(*) AS c FROM facts WHERE answered GROUP BY {_KEY}, bucket
    )
    INSERT INTO usage_key_hourly ({_KEY}, requests, errors, tokens_in, tokens_out, cost_micros,
        latency_ms_sum, tokens_cached_in, tokens_cache_write, tokens_reasoning, latency_buckets,
        latency_ms_max)
    SELECT s.hour, s.org_id, s.key_id, s.operation, s.model, s.requests, s.errors, s.tokens_in,
           s.tokens_out, s.cost, s.latency, s.cached, s.written, s.reasoning,
           ARRAY(SELECT coalesce(h.c, 0) FROM generate_series(0, {len(BOUNDS)}) AS g(i)
                 LEFT JOIN hist h ON h.hour = s.hour AND h.org_id = s.org_id AND h.key_id = s.key_id
                      AND h.operation = s.operation AND h.model = s.model AND h.bucket = g.i
                 ORDER BY g.i),
           s.max_ms
    FROM sums s
"""

_BUCKET_SUMS = ", ".join(f"sum(latency_buckets[{i}])" for i in range(1, len(BOUNDS) + 2))
_BACKFILL_DAILY = f"""
    INSERT INTO usage_latency_daily (day, org_id, model, latency_buckets, latency_ms_max)
    SELECT (hour AT TIME ZONE 'UTC')::date, org_id, model, ARRAY[{_BUCKET_SUMS}]::bigint[],
           max(latency_ms_max)
    FROM usage_key_hourly
    GROUP BY 1, 2, 3
    HAVING max(latency_ms_max) > 0 OR sum(latency_buckets[1]) > 0
"""


def upgrade() -> None:
    op.execute("SET LOCAL timezone = 'UTC'")
    op.execute("ALTER TABLE usage_events ADD COLUMN operation text NOT NULL DEFAULT 'chat'")
    op.execute("ALTER TABLE usage_events ADD COLUMN endpoint text NOT NULL DEFAULT ''")
    op.execute(
        "CREATE INDEX ix_usage_events_org_failed ON usage_events (org_id, created_at DESC, event_id DESC)"
        " WHERE status NOT IN ('ok', 'client_disconnected')"
    )
    op.execute(
        """
        CREATE TABLE usage_key_hourly (
            hour timestamptz NOT NULL,
            org_id text NOT NULL,
            key_id bigint NOT NULL,
            operation text NOT NULL,
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
            latency_buckets bigint[] NOT NULL,
            latency_ms_max bigint NOT NULL DEFAULT 0,
            CONSTRAINT pk_usage_key_hourly PRIMARY KEY (org_id, hour, key_id, operation, model)
        ) PARTITION BY RANGE (hour)
        """
    )
    op.execute(
        """
        SELECT partman.create_parent(
            p_parent_table => 'public.usage_key_hourly', p_control => 'hour', p_type => 'native',
            p_interval => 'monthly', p_premake => 2, p_jobmon => false,
            p_start_partition => to_char(
                least((SELECT min(created_at) FROM usage_events), now() - interval '7 days'), 'YYYY-MM-01'))
        """
    )
    op.execute(
        "UPDATE partman.part_config SET retention = '400 days', retention_keep_table = false,"
        " infinite_time_partitions = true WHERE parent_table = 'public.usage_key_hourly'"
    )
    op.execute(_BACKFILL)
    op.execute(
        """
        CREATE TABLE usage_latency_daily (
            day date NOT NULL,
            org_id text NOT NULL,
            model text NOT NULL,
            latency_buckets bigint[] NOT NULL,
            latency_ms_max bigint NOT NULL DEFAULT 0,
            CONSTRAINT pk_usage_latency_daily PRIMARY KEY (org_id, day, model)
        )
        """
    )
    op.execute(_BACKFILL_DAILY)


def downgrade() -> None:
    op.execute("DROP TABLE usage_latency_daily")
    op.execute("DELETE FROM partman.part_config WHERE parent_table = 'public.usage_key_hourly'")
    op.execute("DROP TABLE usage_key_hourly")
    op.execute("DROP TABLE IF EXISTS partman.template_public_usage_key_hourly")
    op.execute("DROP INDEX ix_usage_events_org_failed")
    op.execute("ALTER TABLE usage_events DROP COLUMN endpoint")
    op.execute("ALTER TABLE usage_events DROP COLUMN operation")
