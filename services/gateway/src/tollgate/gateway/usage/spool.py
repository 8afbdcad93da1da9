"""Durable spool for usage events Kafka could not take: a Redis stream, drained on recovery."""

from __future__ import annotations

from typing import Protocol

import orjson
from redis.asyncio import Redis

from tollgate.gateway.usage.events import OutgoingEvent


class Spool(Protocol):
    async def add(self, event: OutgoingEvent) -> None: ...
    async def read(self, count: int) -> list[tuple[bytes, OutgoingEvent]]: ...
    async def delete(self, entry_ids: list[bytes]) -> None: ...
    async def length(self) -> int: ...


class RedisSpool:
    def __init__(self, redis: Redis, stream: str) -> None:
        self._redis = redis
        self._stream = stream

    async def add(self, event: OutgoingEvent) -> None:
        headers = orjson.dumps([[k, v.decode("latin-1")] for k, v in event.headers])
        fields = {b"id": event.event_id.encode(), b"k": event.key, b"v": event.value, b"h": headers}
        await self._redis.xadd(self._stream, fields)  # type: ignore[arg-type]

    async def read(self, count: int) -> list[tuple[bytes, OutgoingEvent]]:
        entries = await self._redis.xrange(self._stream, "-", "+", count=count)
        out = []
        for entry_id, fields in entries:
            headers = [(k, v.encode("latin-1")) for k, v in orjson.loads(fields[b"h"])]
            event = OutgoingEvent(fields[b"id"].decode(), fields[b"k"], fields[b"v"], headers)
            out.append((entry_id if isinstance(entry_id, bytes) else str(entry_id).encode(), event))
        return out

    async def delete(self, entry_ids: list[bytes]) -> None:
        if entry_ids:
            await self._redis.xdel(self._stream, *entry_ids)

    async def length(self) -> int:
        return int(await self._redis.xlen(self._stream))
