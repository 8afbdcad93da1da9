"""One Redis client per process, on a blocking connection pool.

redis-py's default pool raises `MaxConnectionsError` once its limit of concurrent commands is
reached, which under a burst turns into 503s on the hot path. A blocking pool makes the extra
callers wait (up to `timeout` seconds) for a connection instead.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis


def make_redis(
    url: str, *, decode_responses: bool = False, max_connections: int = 100, timeout_s: float = 5.0
) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, decode_responses=decode_responses, max_connections=max_connections, timeout=timeout_s
    )
    return Redis(connection_pool=pool)
