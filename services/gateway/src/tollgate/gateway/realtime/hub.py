"""One reader per gateway process: a blocking XREAD over the streams of the organisations that have
open connections here (and the broadcast stream), handing each entry to those connections. A
connection's `offer` never waits (its queue is bounded: a full one drops that connection), so a slow
client never holds up the reader or anyone else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from redis.exceptions import RedisError

from tollgate.gateway.realtime.events import RealtimeEvent
from tollgate.gateway.realtime.store import EventStore

log = logging.getLogger(__name__)


class Listener(Protocol):
    def offer(self, stream: str, stream_id: str, event: RealtimeEvent) -> None: ...


class Hub:
    def __init__(
        self, store: EventStore, *, block_ms: int = 2000, batch: int = 500, retry_s: float = 1.0
    ) -> None:
        self._store = store
        self._block_ms = block_ms
        self._batch = batch
        self._retry_s = retry_s
        self._listeners: dict[str, set[Listener]] = {}
        self._positions: dict[str, str] = {}
        self._changed = asyncio.Event()

    async def join(self, stream: str, listener: Listener) -> None:
        """From now on `listener` is offered every entry of `stream` after the moment of joining (at
        the latest): a connection catches up on what came before from the store itself."""
        if stream not in self._positions:
            self._positions[stream] = await self._store.last_id(stream)
            self._changed.set()  # the reader's XREAD must include the new stream
        self._listeners.setdefault(stream, set()).add(listener)

    def leave(self, stream: str, listener: Listener) -> None:
        listeners = self._listeners.get(stream)
        if listeners is None:
            return
        listeners.discard(listener)
        if not listeners:
            del self._listeners[stream]
            self._positions.pop(stream, None)

    async def run(self) -> None:
        while True:
            if not self._positions:
                await self._changed.wait()
            self._changed.clear()
            reading = asyncio.ensure_future(
                self._store.read(dict(self._positions), self._block_ms, self._batch)
            )
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({reading, changed}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await reading
                raise
            finally:
                changed.cancel()
            if not reading.done():
                # a stream joined: read again including it (cancelling drops that Redis connection)
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await reading
                continue
            try:
                answer = reading.result()
            except (RedisError, OSError) as exc:
                log.warning("realtime stream read failed, retrying", extra={"error": repr(exc)})
                await asyncio.sleep(self._retry_s)
                continue
            self.dispatch(answer)

    def dispatch(self, answer: list[tuple[str, list[tuple[str, RealtimeEvent]]]]) -> None:
        for stream, entries in answer:
            if stream not in self._positions or not entries:
                continue  # left while the read was in flight
            self._positions[stream] = entries[-1][0]
            for listener in list(self._listeners.get(stream, ())):
                for stream_id, event in entries:
                    listener.offer(stream, stream_id, event)
