"""/ws's Redis side (realtime/store.py, hub.py) and a connection's queue policy (session.py), on a
real Redis (GATEWAY_TEST_REDIS_URL)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from tollgate.common.errors import ServiceUnavailable, Unauthenticated
from tollgate.gateway.realtime.events import Cursor, RealtimeEvent, Viewer
from tollgate.gateway.realtime.hub import Hub
from tollgate.gateway.realtime.metrics import RealtimeMetrics
from tollgate.gateway.realtime.session import Connection, Limits, Realtime, Revoked
from tollgate.gateway.realtime.store import BROADCAST_STREAM, EventStore, org_stream

REDIS_URL = os.environ.get("GATEWAY_TEST_REDIS_URL", "redis://127.0.0.1:26479/0")


def event(org: str, channel: str = "training", event_id: str | None = None) -> RealtimeEvent:
    kind = {"training": "training_started", "cost": "cost_alert", "usage": "usage"}[channel]
    return RealtimeEvent(event_id or uuid.uuid4().hex, kind, channel, org, {"n": 1}, 1)


@pytest.fixture
async def store() -> AsyncIterator[EventStore]:
    redis = Redis.from_url(REDIS_URL)
    yield EventStore(redis, max_len=1000, retention_s=600, dedupe_ttl_s=600)
    await redis.aclose()


def connection(store: EventStore, org: str, queue: int = 16, sees_all: bool = True) -> Connection:
    rt = Realtime(
        cast(Any, None), store, Hub(store), RealtimeMetrics(CollectorRegistry()), Limits(send_queue=queue)
    )
    return Connection(cast(Any, None), rt, Viewer(org, 1, "u", sees_all))


def sent(conn: Connection) -> list[dict[str, Any]]:
    out = []
    while not conn.queue.empty():
        out.append(orjson.loads(conn.queue.get_nowait()[1]))
    return out


async def test_an_event_is_appended_once_however_often_kafka_delivers_it(store: EventStore) -> None:
    org = f"org_{uuid.uuid4().hex}"
    first, again = event(org, event_id="e1"), event(org, event_id="e1")
    assert await store.append([first, again, event(org, event_id="e2")]) == 2
    assert await store.append([first]) == 0
    entries = await store.after(org_stream(org), "0-0", 10)
    assert [e.event_id for _, e in entries] == ["e1", "e2"]
    assert await store.last_id(org_stream(org)) == entries[-1][0]
    assert await store.after(org_stream(org), entries[0][0], 10) == entries[1:]
    assert await store.last_id(org_stream(f"org_{uuid.uuid4().hex}")) == "0-0"


async def test_usage_watches_expire(store: EventStore) -> None:
    org, gone = f"org_{uuid.uuid4().hex}", f"org_{uuid.uuid4().hex}"
    await store.watch_usage([org], 60)
    await store.watch_usage([gone], -1)  # already expired
    watched = await store.usage_watched()
    assert org in watched and gone not in watched


async def test_a_connection_catches_up_then_goes_live_without_duplicates(store: EventStore) -> None:
    org = f"org_{uuid.uuid4().hex}"
    conn = connection(store, org)
    conn.channels = {"training", "cost"}
    await conn.start_positions(None)
    await store.append([event(org), event(org, "usage")])  # usage: not subscribed
    hub = conn.rt.hub
    for stream in conn.streams:
        await hub.join(stream, conn)
    await conn.catch_up()
    caught = sent(conn)
    assert [f["type"] for f in caught] == ["training_started"]
    # the hub offers what the catch-up already sent, and a new one: only the new one goes out
    await store.append([later := event(org, "cost")])
    hub.dispatch([(org_stream(org), await store.after(org_stream(org), "0-0", 10))])
    live = sent(conn)
    assert [(f["type"], f["event_id"]) for f in live] == [("cost_alert", later.event_id)]
    # every id is a cursor a new connection resumes after
    resumed = connection(store, org)
    resumed.channels = {"training", "cost"}
    await resumed.start_positions(Cursor.parse(caught[0]["id"]))
    await resumed.catch_up()
    assert [f["event_id"] for f in sent(resumed)] == [later.event_id]


async def test_a_full_queue_drops_the_connection_and_never_waits(store: EventStore) -> None:
    org = f"org_{uuid.uuid4().hex}"
    conn = connection(store, org, queue=2)
    conn.channels = {"training"}
    await conn.start_positions(None)
    conn.live = True
    entries = []
    for _ in range(3):
        await store.append([event(org)])
    entries = await store.after(org_stream(org), "0-0", 10)
    for sid, ev in entries:
        conn.offer(org_stream(org), sid, ev)
    assert conn.slow.is_set() and conn.queue.qsize() == 2


async def test_the_hub_reads_a_stream_joined_while_it_waits(store: EventStore) -> None:
    org = f"org_{uuid.uuid4().hex}"
    conn = connection(store, org)
    conn.channels = {"training"}
    await conn.start_positions(None)
    conn.live = True
    hub = Hub(store, block_ms=10_000)
    runner = asyncio.create_task(hub.run())
    try:
        await hub.join(BROADCAST_STREAM, conn)
        await asyncio.sleep(0.05)  # the reader now blocks on the broadcast stream alone
        await hub.join(org_stream(org), conn)
        await store.append([fresh := event(org)])
        for _ in range(200):
            if not conn.queue.empty():
                break
            await asyncio.sleep(0.01)
        assert [f["event_id"] for f in sent(conn)] == [fresh.event_id]
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


class Principals:
    """Answers as auth would: unavailable first, then the token no longer authenticates."""

    def __init__(self) -> None:
        self.calls = 0

    async def get(self, token: str) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise ServiceUnavailable("auth is away")
        raise Unauthenticated("revoked", code="invalid_api_key")


async def test_an_open_connection_ends_once_its_token_no_longer_authenticates(store: EventStore) -> None:
    principals = Principals()
    rt = Realtime(
        cast(Any, principals), store, Hub(store), RealtimeMetrics(CollectorRegistry()), Limits(recheck_s=0.01)
    )
    conn = Connection(cast(Any, None), rt, Viewer("org", 1, "u", True), token="tg_x")
    with pytest.raises(Revoked):
        await asyncio.wait_for(conn.recheck_loop(), 5)
    assert principals.calls == 2  # auth being away ended nothing
