from __future__ import annotations

import asyncio

import pytest
from gateway_fakes import PRINCIPALS, FakeAuth
from prometheus_client import CollectorRegistry

from tollgate.common.errors import Unauthenticated
from tollgate.contracts.v1 import events_pb2
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.principals.cache import PrincipalCache, key_digest
from tollgate.gateway.principals.consumer import KeyInvalidationConsumer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(auth: FakeAuth, clock: Clock) -> PrincipalCache:
    return PrincipalCache(
        auth.authenticate, GatewayMetrics(CollectorRegistry()), ttl_s=30, negative_ttl_s=2, clock=clock
    )


async def test_hits_until_ttl_then_asks_auth_again() -> None:
    auth, clock = FakeAuth(), Clock()
    cache = make(auth, clock)
    assert await cache.get("user-key") == PRINCIPALS["user-key"]
    clock.now += 29
    await cache.get("user-key")
    assert auth.calls == ["user-key"]
    clock.now += 2
    await cache.get("user-key")
    assert auth.calls == ["user-key", "user-key"]


async def test_refusals_are_cached_for_two_seconds_only() -> None:
    auth, clock = FakeAuth(), Clock()
    cache = make(auth, clock)
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await cache.get("bad")
    assert auth.calls == ["bad"]
    clock.now += 2.5
    with pytest.raises(Unauthenticated):
        await cache.get("bad")
    assert auth.calls == ["bad", "bad"]


async def test_entries_are_keyed_by_digest_never_the_raw_key() -> None:
    cache = make(FakeAuth(), Clock())
    await cache.get("user-key")
    assert "user-key" not in cache._entries
    assert key_digest("user-key") in cache._entries


async def test_key_changed_event_drops_entries_by_key_id() -> None:
    auth, clock = FakeAuth(), Clock()
    cache = make(auth, clock)
    await cache.get("user-key")
    await cache.get("admin-key")
    consumer = KeyInvalidationConsumer(lambda: None, cache, GatewayMetrics(CollectorRegistry()))  # type: ignore[arg-type,return-value]
    event = events_pb2.ApiKeyChanged(key_id=PRINCIPALS["user-key"].key_id, key_hash="hmac", change="revoked")
    consumer.apply(event.SerializeToString())
    await cache.get("user-key")
    await cache.get("admin-key")
    assert auth.calls == ["user-key", "admin-key", "user-key"]


async def test_concurrent_misses_share_one_call_and_a_racing_revocation_is_not_cached() -> None:
    gate = asyncio.Event()
    calls: list[str] = []

    async def slow_auth(key: str) -> object:
        calls.append(key)
        await gate.wait()
        return PRINCIPALS["user-key"]

    cache = PrincipalCache(slow_auth, GatewayMetrics(CollectorRegistry()))  # type: ignore[arg-type]
    first = asyncio.create_task(cache.get("user-key"))
    second = asyncio.create_task(cache.get("user-key"))
    await asyncio.sleep(0)
    cache.invalidate_key_id(PRINCIPALS["user-key"].key_id)  # revoked while auth was answering
    gate.set()
    assert await first == await second == PRINCIPALS["user-key"]
    assert calls == ["user-key"]
    assert len(cache) == 0
