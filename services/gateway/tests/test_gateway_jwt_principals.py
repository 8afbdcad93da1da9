"""A signed-in user's access token (JWT) in the principal cache: its principal (key_id 0) is kept
until the token's own expiry or the TTL, whichever is first, and no key event can name it."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from tollgate.common.auth_client import Principal
from tollgate.contracts.v1 import events_pb2
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.consumer import KeyInvalidationConsumer

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJl"
KEY = "tg_user_key"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenAuth:
    """Answers a token principal expiring `token_lifetime_s` from now, and a key principal (id 7)."""

    def __init__(self, token_lifetime_s: int) -> None:
        self.lifetime = token_lifetime_s
        self.calls: list[str] = []

    async def authenticate(self, credential: str) -> Principal:
        self.calls.append(credential)
        if credential == KEY:
            return Principal(7, "org-1", "usr-1", "user", 0, ("read", "write"), "tg_user", 0, 0)
        expires = int(time.time()) + self.lifetime
        return Principal(0, "org-1", "usr-1", "user", 0, ("read", "write", "delete"), "", expires, 0)


def make(auth: TokenAuth, clock: Clock, ttl_s: float = 30) -> PrincipalCache:
    return PrincipalCache(
        auth.authenticate, GatewayMetrics(CollectorRegistry()), ttl_s=ttl_s, negative_ttl_s=2, clock=clock
    )


async def test_a_token_principal_is_not_kept_past_the_tokens_expiry() -> None:
    auth, clock = TokenAuth(token_lifetime_s=10), Clock()
    cache = make(auth, clock)
    assert (await cache.get(TOKEN)).key_id == 0
    clock.now += 8  # the token has at least 9 s left: still served from the cache
    await cache.get(TOKEN)
    assert auth.calls == [TOKEN]
    clock.now += 3  # past the token's exp, well inside the 30 s TTL: auth decides again
    await cache.get(TOKEN)
    assert auth.calls == [TOKEN, TOKEN]


async def test_a_long_lived_token_is_kept_no_longer_than_the_ttl() -> None:
    auth, clock = TokenAuth(token_lifetime_s=3600), Clock()
    cache = make(auth, clock, ttl_s=5)
    await cache.get(TOKEN)
    clock.now += 4.9
    await cache.get(TOKEN)
    assert auth.calls == [TOKEN]
    clock.now += 0.2  # the TTL bounds how long a logged-out session's token keeps working here
    await cache.get(TOKEN)
    assert auth.calls == [TOKEN, TOKEN]


async def test_key_events_leave_token_entries_alone_and_a_reconnect_clears_them() -> None:
    auth, clock = TokenAuth(token_lifetime_s=3600), Clock()
    cache = make(auth, clock)
    await cache.get(TOKEN)
    await cache.get(KEY)
    assert 0 not in cache._by_key_id  # nothing can invalidate "key 0": it is not indexed at all
    consumer = KeyInvalidationConsumer(lambda: None, cache, GatewayMetrics(CollectorRegistry()))  # type: ignore[arg-type,return-value]
    consumer.apply(events_pb2.ApiKeyChanged(key_id=7, key_hash="h", change="revoked").SerializeToString())
    await cache.get(TOKEN)
    await cache.get(KEY)
    assert auth.calls == [TOKEN, KEY, KEY]
    cache.clear()  # what the consumer does when it (re)connects: events may have been missed
    await cache.get(TOKEN)
    assert auth.calls == [TOKEN, KEY, KEY, TOKEN]
    assert len(cache) == 1
