"""The Redis side of /ws: one stream per organisation plus one broadcast stream, and the set of
organisations someone watches `usage` of.

Keys carry the organisation in a hash tag, so an organisation's stream and its dedupe marks live in
one Redis Cluster slot and the append script may touch both."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from redis.asyncio import Redis

from tollgate.gateway.realtime.events import RealtimeEvent

BROADCAST_STREAM = "realtime:{broadcast}:events"
WATCHED_USAGE = "realtime:usage-watchers"

# Kafka redelivers (a consumer renewal, a rebalance): the source event id is marked first, and only
# a fresh mark appends. The stream's TTL is renewed on every append so an idle org's stream goes.
_APPEND = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[3])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  return id
end
return false
"""

Entry = tuple[str, RealtimeEvent]  # (stream id, event)


def org_stream(org_id: str) -> str:
    return f"realtime:{{{org_id}}}:events"


def _seen_key(event: RealtimeEvent) -> str:
    tag = "broadcast" if not event.org_id else event.org_id
    return f"realtime:{{{tag}}}:seen:{event.event_id}"


def stream_of(event: RealtimeEvent) -> str:
    return org_stream(event.org_id) if event.org_id else BROADCAST_STREAM


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class EventStore:
    def __init__(self, redis: Redis, *, max_len: int, retention_s: int, dedupe_ttl_s: int) -> None:
        self._redis = redis
        self._max_len = max_len
        self._retention_s = retention_s
        self._dedupe_ttl_s = dedupe_ttl_s
        self._append = redis.register_script(_APPEND)

    async def append(self, events: Sequence[RealtimeEvent]) -> int:
        """Appends each event not seen before (one round trip); returns how many were new."""
        if not events:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                await self._append(
                    keys=[_seen_key(event), stream_of(event)],
                    args=[self._dedupe_ttl_s, self._max_len, event.encode(), self._retention_s],
                    client=pipe,
                )
            results = await pipe.execute()
        return sum(1 for r in results if r)

    async def after(self, stream: str, after: str, count: int) -> list[Entry]:
        """Up to `count` entries after stream id `after` (exclusive), oldest first."""
        rows: Any = await self._redis.xrange(stream, min=f"({after}", max="+", count=count)
        return [(_text(sid), RealtimeEvent.decode(fields[b"e"])) for sid, fields in rows]

    async def last_id(self, stream: str) -> str:
        """The newest entry's id, "0-0" for an empty or missing stream: a live reader's start."""
        rows: Any = await self._redis.xrevrange(stream, max="+", min="-", count=1)
        return _text(rows[0][0]) if rows else "0-0"

    async def read(
        self, positions: dict[str, str], block_ms: int, count: int
    ) -> list[tuple[str, list[Entry]]]:
        """XREAD of every stream after its position, waiting up to block_ms for the first entry."""
        if not positions:
            return []
        answer: Any = await self._redis.xread(positions, count=count, block=block_ms)  # type: ignore[arg-type]
        return [
            (_text(stream), [(_text(sid), RealtimeEvent.decode(f[b"e"])) for sid, f in rows])
            for stream, rows in answer or []
        ]

    async def watch_usage(self, org_ids: Iterable[str], linger_s: float) -> None:
        """Marks these organisations' usage as watched for linger_s (renewed while connected)."""
        until = time.time() + linger_s
        mapping = {org: until for org in org_ids}
        if mapping:
            await self._redis.zadd(WATCHED_USAGE, mapping)

    async def usage_watched(self) -> set[str]:
        """The organisations whose usage someone watches now (expired marks are dropped)."""
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(WATCHED_USAGE, "-inf", now)
            pipe.zrangebyscore(WATCHED_USAGE, now, "+inf")
            _, members = await pipe.execute()
        return {_text(m) for m in members}
