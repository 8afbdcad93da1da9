"""One /ws connection: the auth handshake, subscriptions, resumption and a bounded send queue.

Every frame the server sends (events, replies, heartbeats) goes through the connection's queue, in
order; a queue that is full when something is offered, or a send that does not finish in time, means
the client is not reading: the connection is closed with SLOW_CLIENT, and nothing else waits on it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from tollgate.common.errors import Forbidden, TollgateError, Unauthenticated
from tollgate.common.waits import timed
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.permissions import ensure_permitted
from tollgate.gateway.realtime.events import CHANNELS, Cursor, RealtimeEvent, Viewer, stream_id_key
from tollgate.gateway.realtime.handshake import (
    SLOW_CLIENT,
    UNAUTHENTICATED,
    authenticate,
    error_frame,
    frame,
    refuse,
)
from tollgate.gateway.realtime.hub import Hub
from tollgate.gateway.realtime.metrics import RealtimeMetrics
from tollgate.gateway.realtime.store import BROADCAST_STREAM, EventStore, org_stream


@dataclass(frozen=True)
class Limits:
    auth_timeout_s: float = 5.0
    heartbeat_s: float = 15.0
    send_queue: int = 1024
    send_timeout_s: float = 10.0
    max_replay: int = 10_000
    usage_watch_s: float = 120.0  # how long an org's usage stays watched after its last subscriber
    recheck_s: float = 30.0  # how often an open connection's token is checked again (revocation)


@dataclass(frozen=True)
class Realtime:
    """What every connection shares."""

    principals: PrincipalCache
    store: EventStore
    hub: Hub
    metrics: RealtimeMetrics
    limits: Limits


class Slow(Exception):
    """The client stopped reading."""


class Revoked(Exception):
    """The connection's key was revoked or its session ended."""


class Connection:
    def __init__(self, ws: WebSocket, rt: Realtime, viewer: Viewer, token: str = "") -> None:
        self.ws = ws
        self.rt = rt
        self.viewer = viewer
        self._token = token  # in memory only, to check it again
        self.channels: set[str] = set()
        # (channel, frame): the channel of an event, "" for the server's own frames
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(rt.limits.send_queue)
        self.slow = asyncio.Event()
        self.positions: dict[str, str] = {}
        self.catching_up: list[tuple[str, str, RealtimeEvent]] | None = None
        self.live = False

    @property
    def streams(self) -> tuple[str, str]:
        return org_stream(self.viewer.org_id), BROADCAST_STREAM

    def push(self, data: bytes, channel: str = "") -> None:
        """Queues a frame, never waiting: a full queue marks the client slow (it is dropped)."""
        if self.slow.is_set():
            return
        try:
            self.queue.put_nowait((channel, data))
        except asyncio.QueueFull:
            self.slow.set()

    def offer(self, stream: str, stream_id: str, event: RealtimeEvent) -> None:
        """From the hub: an entry of one of this connection's streams."""
        if self.catching_up is not None:
            self.catching_up.append((stream, stream_id, event))
        elif self.live:
            self._deliver(stream, stream_id, event)

    def _deliver(self, stream: str, stream_id: str, event: RealtimeEvent) -> None:
        if stream_id_key(stream_id) <= stream_id_key(self.positions[stream]):
            return  # already sent (the catch-up and the live read overlap)
        self.positions[stream] = stream_id
        if (event.channel in self.channels or event.channel == "system") and self.viewer.may_see(event):
            org, broadcast = self.streams
            self.push(
                event.message(str(Cursor(self.positions[org], self.positions[broadcast]))), event.channel
            )

    async def start_positions(self, cursor: Cursor | None) -> None:
        org, broadcast = self.streams
        if cursor is not None:
            self.positions = {org: cursor.org, broadcast: cursor.broadcast}
        else:
            self.positions = {
                org: await self.rt.store.last_id(org),
                broadcast: await self.rt.store.last_id(broadcast),
            }

    async def catch_up(self) -> None:
        """Sends what came after the positions (resumption), then goes live; entries the hub offers
        meanwhile are kept and sent after, those already sent skipped."""
        self.catching_up = []
        try:
            entries = [
                (stream, sid, event)
                for stream in self.streams
                for sid, event in await self.rt.store.after(
                    stream, self.positions[stream], self.rt.limits.max_replay
                )
            ]
            entries.sort(key=lambda e: stream_id_key(e[1]))  # one Redis clock: a close merge of the two
            for entry in [*entries, *self.catching_up]:
                self._deliver(*entry)
        finally:
            self.catching_up = None
        self.live = True

    async def send_loop(self) -> None:
        while True:
            channel, data = await self.queue.get()
            try:
                await timed(self.ws.send_text(data.decode()), self.rt.limits.send_timeout_s)
            except TimeoutError as exc:
                raise Slow from exc
            if channel:
                self.rt.metrics.delivered.labels(channel).inc()

    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.rt.limits.heartbeat_s)
            self.push(frame("heartbeat", ts=int(time.time() * 1000)))

    async def recheck_loop(self) -> None:
        """Ends the connection once its token no longer authenticates (a revoked key, a logout):
        the same cached lookup as the HTTP routes, so as quickly as they notice. Auth being away
        ends nothing."""
        while True:
            await asyncio.sleep(self.rt.limits.recheck_s)
            try:
                ensure_permitted(await self.rt.principals.get(self._token), "GET")
            except (Unauthenticated, Forbidden) as exc:
                raise Revoked from exc
            except TollgateError:
                continue

    async def watch_loop(self) -> None:
        """Keeps this org's usage watched (fanin.py records it) while a usage subscriber is here."""
        while True:
            if "usage" in self.channels:
                await self.rt.store.watch_usage([self.viewer.org_id], self.rt.limits.usage_watch_s)
            await asyncio.sleep(self.rt.limits.usage_watch_s / 4)

    async def receive_loop(self) -> None:
        while True:
            try:
                message = orjson.loads(await self.ws.receive_text())
            except orjson.JSONDecodeError:
                self.push(error_frame("invalid_message", "Messages must be JSON objects."))
                continue
            await self.handle(message if isinstance(message, dict) else {})

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("subscribe", "unsubscribe"):
            channels = message.get("channels")
            if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
                self.push(error_frame("invalid_channels", "`channels` must be a list of channel names."))
                return
            unknown = sorted(set(channels) - set(CHANNELS))
            if unknown:
                self.push(
                    error_frame(
                        "unknown_channel", f"Unknown channel(s) {unknown}; channels are {list(CHANNELS)}."
                    )
                )
                return
            if kind == "subscribe":
                if "usage" in channels and "usage" not in self.channels:
                    await self.rt.store.watch_usage([self.viewer.org_id], self.rt.limits.usage_watch_s)
                self.channels |= set(channels)
            else:
                self.channels -= set(channels)
            self.push(frame("subscribed", channels=sorted(self.channels)))
            if not self.live:
                await self.catch_up()
        elif kind == "resume":
            try:
                cursor = Cursor.parse(str(message.get("last_event_id", "")))
            except ValueError as exc:
                self.push(error_frame("invalid_last_event_id", str(exc)))
                return
            await self.start_positions(cursor)
            if self.live:
                self.live = False
                await self.catch_up()
        elif kind == "ping":
            self.push(frame("pong", ts=int(time.time() * 1000)))
        else:
            self.push(
                error_frame("unknown_type", "Message types are subscribe, unsubscribe, resume and ping.")
            )


async def serve(ws: WebSocket, rt: Realtime) -> None:
    await ws.accept()
    try:
        auth = await authenticate(ws, rt)
    except WebSocketDisconnect:
        return
    if auth is None:
        return
    viewer, cursor, token = auth
    conn = Connection(ws, rt, viewer, token)
    for stream in conn.streams:
        await rt.hub.join(stream, conn)
    rt.metrics.connections.inc()
    try:
        await conn.start_positions(cursor)
        conn.push(frame("authenticated", org_id=viewer.org_id, channels=list(CHANNELS)))
        await _run(conn)
    finally:
        rt.metrics.connections.dec()
        for stream in conn.streams:
            rt.hub.leave(stream, conn)


async def _run(conn: Connection) -> None:
    tasks = [
        asyncio.ensure_future(loop())
        for loop in (
            conn.receive_loop,
            conn.send_loop,
            conn.heartbeat_loop,
            conn.watch_loop,
            conn.recheck_loop,
            conn.slow.wait,
        )
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    failure = next((t.exception() for t in done if not t.cancelled() and t.exception() is not None), None)
    if conn.slow.is_set() or isinstance(failure, Slow):
        conn.rt.metrics.closed.labels("slow_client").inc()
        # the close frame queues behind what the client has not read: bounded, like any send
        with contextlib.suppress(Exception):
            await timed(
                conn.ws.close(SLOW_CLIENT, "send queue full: the client is not reading"),
                conn.rt.limits.send_timeout_s,
            )
    elif isinstance(failure, Revoked):
        await refuse(conn.ws, conn.rt, UNAUTHENTICATED, "revoked", "The token no longer authenticates.")
    elif failure is not None and not isinstance(failure, WebSocketDisconnect):
        conn.rt.metrics.closed.labels("error").inc()
        with contextlib.suppress(Exception):
            await conn.ws.close(1011, "internal error")
        raise failure
