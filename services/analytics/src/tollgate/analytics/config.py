"""Analytics settings, read from ANALYTICS_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tollgate.common.settings import ServiceSettings

# services/analytics/alembic.ini: the package is installed editable (uv workspace, also in the image).
_DEFAULT_ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


class AnalyticsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ANALYTICS_", extra="ignore")

    service_name: str = "analytics"
    http_port: int = 8083
    metrics_port: int = 9183
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_analytics"
    # consumer batches and report queries share the pool (ServiceSettings: 5 + 5)
    db_pool_size: int = 10
    db_max_overflow: int = 10
    alembic_ini: str = str(_DEFAULT_ALEMBIC_INI)
    consumer_group: str = "analytics-usage"
    # Upper bound on one consumed batch: one INSERT and one transaction per batch.
    consume_max_records: int = 500
    consume_timeout_ms: int = 500
    # Window used when the caller gives no dates (inclusive of today, UTC).
    default_window_days: int = 30
    max_window_days: int = 366
    auth_timeout_s: float = 2.0
    # Raw usage facts are kept this many days (one partition per UTC day, dropped whole); the daily
    # rollup is kept for ever, the hourly one for its own retention. Facts older than the retention
    # are not stored (a copy could no longer be recognised as one).
    usage_retention_days: int = Field(default=90, ge=2, le=3660)
    usage_hourly_retention_days: int = Field(default=400, ge=2, le=3660)
    partition_maintenance_interval_s: float = Field(default=3600.0, gt=0)
    # Chat records (docs/chat-records.md): content is encrypted under a key derived from this
    # secret (ANALYTICS_SECRET_KEY; rotation: ANALYTICS_PREVIOUS_SECRET_KEYS, newest first).
    secret_key: SecretStr = SecretStr("tollgate-dev-only-analytics-secret-change-me")
    previous_secret_keys: SecretStr = SecretStr("")
    chat_consumer_group: str = "analytics-chat-records"
    chat_purge_interval_s: float = Field(default=3600.0, gt=0)
    # a `q` search decrypts the titles of at most this many of the caller's newest sessions/threads
    chat_search_scan: int = Field(default=1000, ge=10, le=100_000)
