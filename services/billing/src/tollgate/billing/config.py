"""Billing settings, read from the environment under the BILLING_ prefix."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tollgate.common.settings import ServiceSettings

DEV_ALERTS_SECRET_KEY = "tollgate-dev-only-alerts-key-change-me"


class BillingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BILLING_", extra="ignore")

    service_name: str = "billing"
    http_port: int = 8082
    metrics_port: int = 9182
    grpc_port: int = 50052
    # the gateways' hold marks (length-prefixed frames; TLS and mTLS as on the gRPC port)
    marks_port: int = 50053
    # the usage consumer process (tollgate-billing-worker) serves /healthz here, /metrics on the other
    worker_http_port: int = 8085
    worker_metrics_port: int = 9185
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_billing"
    # busier than the default (ServiceSettings): every Authenticate / Reserve miss reads the database
    db_pool_size: int = 10
    db_max_overflow: int = 10

    # Holds older than this are released by the sweeper (a crashed gateway never settles them).
    hold_ttl_seconds: int = 600
    # A hold is stockable (a gateway may keep it for the key's next request) only when this many
    # more holds of its size still fit under the wallet and every budget and quota; 0 turns it off.
    hold_stock_headroom: int = Field(default=100, ge=0)
    sweep_interval_seconds: float = 5.0
    # A hold the gateway marked with its request's actual cost (it answered) and that no usage event
    # has settled this long after: the sweeper publishes the event kept in its mark (the gateway's
    # copy was lost with it, or is late; either way it is counted once). Retried as long as needed.
    hold_mark_grace_seconds: float = Field(default=30.0, gt=0)
    # Marks received are written to Redis in batches this often (and at once before a Reserve
    # they could change is refused): one Redis call per batch instead of one per request.
    hold_mark_flush_seconds: float = Field(default=0.02, gt=0, le=1)
    # Cached wallets expire so a refresh lost in a crash cannot leave Redis stale for long;
    # the next Reserve reloads from PostgreSQL, the source of truth.
    wallet_cache_ttl_seconds: int = 3600
    # Prefix of every Redis key billing owns (tests use a random one).
    redis_prefix: str = "billing"
    # Redis connections per process; callers beyond it wait (up to 5 s) for a free one.
    redis_max_connections: int = 100

    # usage_settlements rows (the exactly-once record of settled events) are kept this many days
    # after the event (day partitions dropped whole), default-partition rows this many days after
    # settling: far beyond any redelivery (Kafka keeps usage.v1 7 days). See docs/billing.md.
    settlement_retention_days: int = Field(default=35, ge=8, le=3660)
    settlement_maintenance_interval_s: float = Field(default=3600.0, gt=0)

    consumer_group: str = "billing-usage"
    consumer_max_records: int = 1000
    # Only the crash test sets this ("crash_after_db_commit").
    failpoint: str = ""
    # Run Alembic to head at start; the alembic.ini next to the package unless overridden.
    alembic_ini: str = ""

    # ---- alerts: the dispatcher in tollgate-billing-worker, e-mail, webhooks ----
    # Webhook signing secrets are stored Fernet-encrypted under a key derived from this.
    alerts_secret_key: SecretStr = SecretStr(DEV_ALERTS_SECRET_KEY)
    # Rotation (docs/operations.md, "Rotate secrets"): the keys it replaced, newest first,
    # comma-separated (BILLING_ALERTS_PREVIOUS_SECRET_KEYS); secrets stored under them still decrypt
    # until `python -m tollgate.billing.rotate_secrets` re-encrypts them.
    alerts_previous_secret_keys: SecretStr = SecretStr("")
    alert_dispatch_interval_seconds: float = 1.0
    alert_dispatch_batch: int = 50
    # A claimed delivery is leased this long; a dispatcher that dies mid-send loses it after that.
    alert_lease_seconds: float = 60.0
    # Retries: attempt n waits base * 2**(n-1) seconds (capped), then `failed` after max attempts.
    alert_max_attempts: int = 8
    alert_retry_base_seconds: float = 30.0
    alert_retry_max_seconds: float = 3600.0
    webhook_timeout_seconds: float = 10.0
    # Webhooks only reach public addresses unless this is set (the local stack sets it).
    webhook_allow_private_networks: bool = False
    # networks a webhook may reach although private (an operator's own receivers), comma-separated CIDRs
    webhook_allowed_networks: str = ""
    # SMTP for e-mail alerts; an empty host marks e-mail deliveries failed ("smtp not configured").
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "alerts@tollgate.local"
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    # Payments: the built-in `test` provider verifies its webhooks with this secret (disabled while
    # empty); purchases go to `payments_provider`. Webhook timestamps older than the tolerance are refused.
    payments_test_webhook_secret: SecretStr = SecretStr("")
    payments_provider: str = "test"
    payments_webhook_tolerance_seconds: int = 300
    # How often the API process reconciles wallets with the ledger (the mismatch gauge).
    reconcile_interval_seconds: float = 300.0
