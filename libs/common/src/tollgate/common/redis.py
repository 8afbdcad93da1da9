"""One Redis client per process, on a blocking connection pool: the one place a client is built.

redis-py's default pool raises `MaxConnectionsError` once its limit of concurrent commands is
reached, which under a burst turns into 503s on the hot path. A blocking pool makes the extra
callers wait (up to `timeout` seconds) for a connection instead.

TLS comes with a `rediss://` URL (plus <P>REDIS_TLS_* files); Sentinel with <P>REDIS_SENTINELS, in
which case the master is asked of the sentinels and followed through a failover. Neither changes a
command's path once connected: the settings are read once, here.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from tollgate.common.networks import split_host_port
from tollgate.common.settings import ServiceSettings
from tollgate.common.tls import TransportConfigError, read_pem, refuse_unused, require_pair
from tollgate.common.transport_settings import TransportSecuritySettings

_TLS_FILES = ("redis_tls_ca_file", "redis_tls_cert_file", "redis_tls_key_file")


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """Sentinel's master discovery with the blocking pool's wait for a free connection."""


def make_redis(
    settings: ServiceSettings,
    *,
    decode_responses: bool = False,
    max_connections: int = 100,
    timeout_s: float = 5.0,
) -> Redis:
    """The client for `settings` (a service's settings: redis_url and the REDIS_* transport ones)."""
    url = settings.redis_url
    tls = url.startswith("rediss://")
    options: dict[str, Any] = {"decode_responses": decode_responses}
    if settings.redis_password.get_secret_value():
        options["password"] = settings.redis_password.get_secret_value()  # the URL's, if any, wins
    if tls:
        options.update(_tls_options(settings))
    else:
        refuse_unused(settings, f"{settings.env_name('redis_url')} is not rediss://", *_TLS_FILES)
    if settings.redis_sentinels:
        return _sentinel_master(settings, options, tls, max_connections, timeout_s)
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout_s, **options)
    return Redis(connection_pool=pool)


def _tls_options(settings: TransportSecuritySettings) -> dict[str, Any]:
    require_pair(settings, "redis_tls_cert_file", "redis_tls_key_file")
    for name in _TLS_FILES:
        read_pem(settings, name)  # unreadable files fail here, naming the variable, not at first command
    return {
        "ssl_ca_certs": settings.redis_tls_ca_file or None,
        "ssl_certfile": settings.redis_tls_cert_file or None,
        "ssl_keyfile": settings.redis_tls_key_file or None,
        "ssl_check_hostname": settings.redis_tls_check_hostname,
        "ssl_cert_reqs": "required",
    }


def _sentinel_master(
    settings: ServiceSettings, options: dict[str, Any], tls: bool, max_connections: int, timeout_s: float
) -> Redis:
    sentinels = [_host_port(settings, part) for part in settings.redis_sentinels.split(",") if part.strip()]
    # from the URL: database, user, password (its host is the sentinels' business)
    url_options = parse_url(settings.redis_url)
    connection: dict[str, Any] = {
        k: url_options[k] for k in ("db", "username", "password") if k in url_options
    }
    for name, value in options.items():
        connection.setdefault(name, value)  # the URL's password wins over REDIS_PASSWORD
    sentinel_options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
    if settings.redis_sentinel_password.get_secret_value():
        sentinel_options["password"] = settings.redis_sentinel_password.get_secret_value()
    if tls:
        sentinel_options.update({"ssl": True, **{k: v for k, v in options.items() if k.startswith("ssl_")}})
    manager = Sentinel(sentinels, sentinel_kwargs=sentinel_options, ssl=tls, **connection)  # type: ignore[no-untyped-call]
    client: Redis = manager.master_for(
        settings.redis_sentinel_master,
        connection_pool_class=_BlockingSentinelPool,
        max_connections=max_connections,
        timeout=timeout_s,
    )
    return client


def _host_port(settings: TransportSecuritySettings, part: str) -> tuple[str, int]:
    address = split_host_port(part)
    if address is None:
        raise TransportConfigError(
            f"{settings.env_name('redis_sentinels')}: {part.strip()!r} is not host:port"
        )
    return address
