"""Gateway settings, env prefix GATEWAY_ (docs/architecture.md)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from tollgate.common.networks import parse_networks
from tollgate.common.settings import ServiceSettings

# Only for local development; deployments set GATEWAY_SECRET_KEY (it encrypts provider keys at rest).
DEV_SECRET_KEY = "tollgate-dev-only-secret-key-change-me"


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    http_port: int = 8080
    metrics_port: int = 9180
    database_url: str = "postgresql+psycopg://tollgate@127.0.0.1:55432/tollgate_gateway"

    secret_key: str = DEV_SECRET_KEY
    # Rotation (docs/operations.md, "Rotate secrets"): the keys GATEWAY_SECRET_KEY replaced, newest
    # first, comma-separated; stored secrets made with them still decrypt until re-encrypted with
    # `python -m tollgate.gateway.rotate_secrets`.
    previous_secret_keys: str = ""
    auth_http_url: str = "http://127.0.0.1:8081"
    billing_http_url: str = "http://127.0.0.1:8082"
    analytics_http_url: str = "http://127.0.0.1:8083"
    training_http_url: str = "http://127.0.0.1:8084"
    # The local model servers' `/v1` URLs, put into the catalog by `python -m
    # tollgate.gateway.catalog.local_models` (deploy/k8s local-models.yaml; empty: not registered)
    local_chat_model_url: str = ""
    local_embedding_model_url: str = ""

    auth_cache_ttl_s: float = 30.0
    auth_negative_ttl_s: float = 2.0
    auth_cache_max_entries: int = 100_000
    grpc_timeout_s: float = 2.0

    upstream_timeout_s: float = 60.0  # also the deadline of all of a request's attempts (routing/)
    upstream_max_connections: int = 1000
    proxy_timeout_s: float = 30.0
    default_max_tokens: int = 4096
    catalog_poll_s: float = 5.0

    # Pricing (docs/billing.md "Pricing modes"): `?batch=1` costs this many times the normal price,
    # and the credit chat API's POST /api/v1/chat costs this many credits when the model sets no
    # per-request price.
    batch_multiplier: float = Field(default=2.0, ge=1.0)
    default_request_price: Decimal = Field(default=Decimal(1), ge=0)
    credit_chat_max_tokens: int = Field(default=150, ge=1)  # the credit chat API's max_tokens default
    # SloughGPT's POST /generate without `model_id` (its own curl example names none) uses this
    # catalog model; "" makes model_id required
    sloughgpt_default_model: str = ""

    # Hold stock (completions/hold_stock.py, docs/billing.md): a busy key's next chat request uses a
    # hold placed while the current one is served. 0 turns it off; stocked holds older than the max
    # age are released unused, which bounds how late a refund or budget change reaches them.
    hold_stock_depth: int = Field(default=16, ge=0, le=64)
    # ... and up to this many for a key fast enough to drain half the depth before a refill returns
    # (it is stocked with what it uses in hold_stock_cover_s, or in four of billing's recent refill
    # round trips when longer, at its recent rate); it also bounds how
    # many stocked holds a busy key may still spend after a refund or budget change
    hold_stock_max_depth: int = Field(default=96, ge=0, le=256)
    hold_stock_cover_s: float = Field(default=0.05, gt=0, le=1)
    # Rate limits (limits/, docs/limits.md): a busy key's units are leased from Redis up to this
    # many requests' worth at a time, and given back when unused after the lease's time
    rate_limits: bool = True
    rate_limit_max_lease: int = Field(default=32, ge=1, le=1024)
    rate_limit_lease_ttl_s: float = Field(default=1.0, gt=0, le=60)
    # Route families' own limits (limits/route_limits.py), 0 turns one off: the credit chat API's
    # requests a minute per client address, IndoxRouter's requests an hour per key.
    credit_chat_rpm_per_address: int = Field(default=60, ge=0)
    indoxrouter_requests_per_hour: int = Field(default=3_600, ge=0)
    # The proxies in front (ingress, load balancer) as comma-separated CIDRs: their X-Forwarded-For
    # names the client (per-address limits). Empty: the socket's peer is the client.
    trusted_proxies: str = ""

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        parse_networks(value)  # a bad network stops the start, naming itself
        return value

    hold_stock_max_age_s: float = Field(default=1.0, gt=0, le=30)
    hold_stock_hot_window_s: float = Field(default=0.5, gt=0, le=30)

    # Hold marks (usage/marks.py, docs/billing.md "Holds at answer time"): a charged request's hold
    # is marked with its actual cost and usage event before the answer leaves, so the next request
    # sees the true balance and a gateway killed after answering loses no usage. They go to
    # billing's marks port (BILLING_MARKS_PORT), TLS as the gRPC channels are (GATEWAY_GRPC_TLS*).
    # An answer waits only while the socket's buffer is full (billing stalled), at most
    # hold_mark_max_wait_s.
    hold_marks: bool = True
    billing_marks_target: str = "127.0.0.1:50053"
    hold_mark_max_wait_s: float = Field(default=0.25, gt=0, le=5)

    # Routing (routing/, docs/providers.md "Routing"): an attempt failing with a connection error, a
    # timeout, a 429 or a 5xx is retried on the same model this many times, after backoff_s doubling
    # each time, then the next model of the chain; a model failing cooldown_failures times in a row is
    # skipped for cooldown_s (per gateway process). 0 failures turns cooldowns off.
    routing_retries: int = Field(default=1, ge=0, le=5)
    routing_backoff_s: float = Field(default=0.05, ge=0, le=5)
    routing_cooldown_failures: int = Field(default=3, ge=0)
    routing_cooldown_s: float = Field(default=30.0, ge=0)

    usage_send_timeout_s: float = 3.0
    # Nothing waits on a usage event, so the producer may gather a few ms of them into one record
    # batch: at a few hundred requests/s that is one produce request per batch instead of per event,
    # which is most of the broker's CPU per request (docs/benchmarks.md). Adds at most this to lag.
    usage_linger_ms: int = Field(default=10, ge=0, le=1000)
    usage_spool_stream: str = "gateway:usage-spool"
    usage_drain_interval_s: float = 1.0

    # /ws real-time events (realtime/, docs/sloughgpt.md "Real-time events"): per-organisation Redis
    # streams capped at realtime_stream_max_len events (approximately) and dropped after
    # realtime_retention_s without a new event; a connection must authenticate within
    # realtime_auth_timeout_s, gets a heartbeat every realtime_heartbeat_s, and is dropped when its
    # send queue (realtime_send_queue frames) fills or a send takes realtime_send_timeout_s.
    realtime: bool = True
    realtime_stream_max_len: int = Field(default=10_000, ge=100)
    realtime_retention_s: int = Field(default=7 * 86_400, ge=60)
    realtime_dedupe_ttl_s: int = Field(default=86_400, ge=60)
    realtime_auth_timeout_s: float = Field(default=5.0, gt=0, le=60)
    realtime_heartbeat_s: float = Field(default=15.0, gt=0, le=300)
    realtime_send_queue: int = Field(default=1024, ge=1, le=100_000)
    realtime_send_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # usage events are recorded only for organisations with a usage subscriber in the last this long
    realtime_usage_watch_s: float = Field(default=120.0, ge=1)

    # The request id becomes the billing hold id and the usage event id, and consumers dedupe on it:
    # trusting a client-chosen id would let a replayed id ride on an earlier request's charge.
    trust_client_request_id: bool = False

    # Feishu bots (bots/, docs/bots.md): Feishu's open API (the simulator's in the test stacks); the
    # gateway's own OpenAI endpoint a bot's model call goes through, billed to the bot's key (empty:
    # this process, http://127.0.0.1:<http_port>); the answer's max_tokens; how often the worker
    # looks for due work besides being woken; how long an event id is remembered (duplicates within
    # it are ignored; older pushes are refused by their signed timestamp); reply attempts.
    feishu_bots: bool = True
    feishu_api_base_url: str = "https://open.feishu.cn"
    feishu_gateway_url: str = ""
    feishu_max_tokens: int = Field(default=1024, ge=1)
    feishu_poll_s: float = Field(default=2.0, gt=0, le=60)
    feishu_event_retention_s: int = Field(default=7 * 86_400, ge=7_200)
    feishu_reply_max_attempts: int = Field(default=6, ge=1, le=20)
    feishu_http_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # an event left in `calling` by a process that died is answered with an apology once its call's
    # own deadline (upstream_timeout_s + 10 s) plus this grace has passed, never called again
    feishu_call_grace_s: float = Field(default=30.0, ge=0, le=3600)
