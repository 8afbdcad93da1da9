"""Auth settings: the shared connection settings under AUTH_, plus key material and tuning."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tollgate.common.api_keys import DEV_KEY_PEPPER
from tollgate.common.keyring import Keyring, rotating_secrets
from tollgate.common.secret_policy import Secret
from tollgate.common.settings import ServiceSettings

# Development only: main warns when it is in use. Long enough for HS256 (RFC 7518 asks >= 256 bits).
DEV_JWT_SECRET = "tollgate-dev-jwt-secret-change-me-in-production-0123456789"

# services/auth/alembic.ini, found from this file so it works from any working directory
DEFAULT_ALEMBIC_INI = Path(__file__).resolve().parents[3] / "alembic.ini"


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    service_name: str = "auth"
    http_port: int = 8081
    metrics_port: int = 9181
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_auth"
    # busier than the default (ServiceSettings): every Authenticate / Reserve miss reads the database
    db_pool_size: int = 10
    db_max_overflow: int = 10
    alembic_ini: Path = DEFAULT_ALEMBIC_INI

    # The architecture names the bare ADMIN_API_KEY too, so both spellings are read.
    admin_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("AUTH_ADMIN_API_KEY", "ADMIN_API_KEY")
    )
    key_pepper: SecretStr = SecretStr(DEV_KEY_PEPPER)
    # Rotation (docs/operations.md, "Rotate secrets"): the peppers AUTH_KEY_PEPPER replaced, newest
    # first, comma-separated. Keys hashed under them still authenticate and move to the current one.
    key_previous_peppers: SecretStr = SecretStr("")

    # last_used_at is written in batches: at most one UPDATE per interval, whatever the traffic.
    last_used_flush_s: float = 5.0
    # Bounds how long an admin call waits on Kafka after its commit; caches expire anyway.
    kafka_publish_timeout_s: float = 3.0
    # Model authorisation: a key with no grants (on it or its group) may call every model when
    # true, none when false (AUTH_UNGRANTED_MEANS_ALL).
    ungranted_means_all: bool = True
    # Rate limits (docs/limits.md): the tier of keys that have none (AUTH_DEFAULT_RATE_TIER, a
    # name from /admin/rate-tier/list). Empty: such keys are not limited.
    default_rate_tier: str = ""

    # Sessions (SloughGPT): login attempt counters live in Redis.
    redis_url: str = "redis://127.0.0.1:56379/0"
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    # The signing secrets AUTH_JWT_SECRET replaced, newest first, comma-separated: access tokens
    # they signed (named by `kid`) are accepted until they expire or the secret is dropped here.
    jwt_previous_secrets: SecretStr = SecretStr("")
    access_token_ttl_s: int = 15 * 60
    refresh_token_ttl_s: int = 30 * 24 * 3600
    # Failed logins per account and per client IP inside one fixed window; the IP limit is higher
    # because many people share an address (NAT, an office), see docs/identity.md.
    login_max_failures_per_account: int = 5
    login_max_failures_per_ip: int = 100
    login_window_s: int = 300
    # Peers whose X-Forwarded-For names the client (the gateway runs beside auth).
    trusted_proxies: list[str] = ["127.0.0.1", "::1"]
    # argon2id cost (argon2-cffi's defaults) and how many hashes may run at once (64 MiB each).
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    password_parallelism: int = 4
    password_hash_concurrency: int = 4
    # How long an invitation into an organisation may be accepted (AUTH_INVITATION_TTL_S).
    invitation_ttl_s: int = 7 * 24 * 3600
    # The guard API keeps the first report of each log-usage sent with an Idempotency-Key this many
    # days (its retries re-send it). Must exceed billing's BILLING_SETTLEMENT_RETENTION_DAYS (35) by
    # at least a day; see docs/identity.md, "Idempotency".
    guard_report_retention_days: int = Field(default=40, ge=9, le=3660)
    guard_report_retention_interval_s: float = Field(default=3600.0, gt=0)


def key_peppers(settings: AuthSettings) -> Keyring:
    return Keyring.from_settings(
        settings.key_pepper.get_secret_value(), settings.key_previous_peppers.get_secret_value()
    )


def jwt_keys(settings: AuthSettings) -> Keyring:
    return Keyring.from_settings(
        settings.jwt_secret.get_secret_value(), settings.jwt_previous_secrets.get_secret_value()
    )


def checked_secrets(settings: AuthSettings) -> list[Secret]:
    """What auth's start (and its commands) hand to secret_policy.enforce: every pepper and JWT
    secret, previous ones included, and the bootstrap admin key when there is one."""
    admin_key = settings.admin_api_key.get_secret_value() if settings.admin_api_key else None
    return [
        *rotating_secrets(
            "AUTH_KEY_PEPPER",
            settings.key_pepper.get_secret_value(),
            "AUTH_KEY_PREVIOUS_PEPPERS",
            settings.key_previous_peppers.get_secret_value(),
            DEV_KEY_PEPPER,
        ),
        *rotating_secrets(
            "AUTH_JWT_SECRET",
            settings.jwt_secret.get_secret_value(),
            "AUTH_JWT_PREVIOUS_SECRETS",
            settings.jwt_previous_secrets.get_secret_value(),
            DEV_JWT_SECRET,
        ),
        Secret("ADMIN_API_KEY", admin_key, required=False),  # the bootstrap admin, when there is one
    ]
