"""Builds /ws's parts from the gateway's settings (main.py runs them)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from tollgate.common.kafka import KafkaConnection
from tollgate.common.redis import make_redis
from tollgate.gateway.config import GatewaySettings
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.realtime.fanin import RealtimeFanIn, UsageWatch, default_factory
from tollgate.gateway.realtime.hub import Hub
from tollgate.gateway.realtime.metrics import RealtimeMetrics
from tollgate.gateway.realtime.session import Limits, Realtime
from tollgate.gateway.realtime.store import EventStore


@dataclass
class RealtimeParts:
    realtime: Realtime
    background: list[Callable[[], Coroutine[Any, Any, None]]]
    close: Callable[[], Awaitable[None]]


def build_realtime(
    settings: GatewaySettings, kafka: KafkaConnection, principals: PrincipalCache, registry: CollectorRegistry
) -> RealtimeParts:
    # its own client: the hub's blocking XREAD holds a connection for seconds at a time
    redis = make_redis(settings, max_connections=50)
    store = EventStore(
        redis,
        max_len=settings.realtime_stream_max_len,
        retention_s=settings.realtime_retention_s,
        dedupe_ttl_s=settings.realtime_dedupe_ttl_s,
    )
    metrics = RealtimeMetrics(registry)
    # blocks well inside the client's socket timeout (make_redis: 5 s), or every read times out
    hub = Hub(store, block_ms=2000)
    limits = Limits(
        auth_timeout_s=settings.realtime_auth_timeout_s,
        heartbeat_s=settings.realtime_heartbeat_s,
        send_queue=settings.realtime_send_queue,
        send_timeout_s=settings.realtime_send_timeout_s,
        max_replay=settings.realtime_stream_max_len,
        usage_watch_s=settings.realtime_usage_watch_s,
        # a revoked key drops its cache entry at once (auth.keys.v1); a logout is seen within the TTL
        recheck_s=settings.auth_cache_ttl_s,
    )
    fanin = RealtimeFanIn(default_factory(kafka), store, UsageWatch(store, refresh_s=0.5), metrics)
    return RealtimeParts(
        Realtime(principals, store, hub, metrics, limits), [fanin.run, hub.run], redis.aclose
    )
