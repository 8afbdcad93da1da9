"""API key → principal, cached in-process so the hot path rarely calls auth.

Keyed by the SHA-256 of the presented key, so raw keys never outlive the request. Entries are
also indexed by key id, because auth's invalidation events carry the key id and a peppered hash
the gateway cannot recompute. Concurrent misses for one key share one Authenticate call.

A signed-in user's access token (JWT) is cached the same way, under its own digest, until its
`exp` or the TTL, whichever comes first. No event names a token (its principal has key_id 0), so
logging out (or a replayed refresh token revoking the session) takes effect here within the TTL
(GATEWAY_AUTH_CACHE_TTL_S); auth itself refuses the token at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable

import grpc

from tollgate.common.auth_client import Principal
from tollgate.common.errors import ServiceUnavailable, Unauthenticated
from tollgate.gateway.metrics import GatewayMetrics

Authenticate = Callable[[str], Awaitable[Principal]]


def key_digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class PrincipalCache:
    def __init__(
        self,
        authenticate: Authenticate,
        metrics: GatewayMetrics,
        *,
        ttl_s: float = 30.0,
        negative_ttl_s: float = 2.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._authenticate = authenticate
        self._metrics = metrics
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._negative: dict[str, tuple[str, float]] = {}
        self._by_key_id: dict[int, set[str]] = {}
        self._inflight: dict[str, asyncio.Future[Principal]] = {}
        # Bumped on every invalidation: a lookup that started before one must not cache its answer.
        self._generation = 0
        self._hits = metrics.principal_cache.labels("hit")  # resolved once: counted every request

    async def get(self, api_key: str) -> Principal:
        digest = key_digest(api_key)
        now = self._clock()
        hit = self._entries.get(digest)
        if hit is not None and hit[1] > now:
            self._hits.inc()
            return hit[0]
        refused = self._negative.get(digest)
        if refused is not None and refused[1] > now:
            self._metrics.principal_cache.labels("negative_hit").inc()
            # A fresh exception each time: re-raising one instance would keep growing its traceback.
            raise Unauthenticated(refused[0], code="invalid_api_key")
        self._metrics.principal_cache.labels("miss").inc()
        pending = self._inflight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal] = asyncio.get_running_loop().create_future()
        self._inflight[digest] = future
        try:
            principal = await self._fetch(api_key, digest)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # marks it retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            future.set_result(principal)
            return principal
        finally:
            del self._inflight[digest]

    async def _fetch(self, api_key: str, digest: str) -> Principal:
        generation = self._generation
        try:
            principal = await self._authenticate(api_key)
        except Unauthenticated as exc:
            if generation == self._generation:
                self._negative[digest] = (exc.message, self._clock() + self._negative_ttl)
            raise
        except grpc.RpcError as exc:
            raise ServiceUnavailable("The authentication service is unavailable; retry shortly.") from exc
        if generation == self._generation:
            self._store(digest, principal)
        return principal

    def _store(self, digest: str, principal: Principal) -> None:
        now = self._clock()
        expires = now + self._ttl
        if principal.expires_at_unix:
            # Never serve a key past its own expiry, whatever the TTL says.
            expires = min(expires, now + max(0.0, principal.expires_at_unix - time.time()))
        if len(self._entries) >= self._max_entries:
            self._evict(now)
        self._entries[digest] = (principal, expires)
        self._negative.pop(digest, None)
        if principal.key_id:  # key_id 0 is an access token's principal: no event ever names it
            self._by_key_id.setdefault(principal.key_id, set()).add(digest)

    def _evict(self, now: float) -> None:
        for digest, (principal, expires) in list(self._entries.items()):
            if expires <= now:
                self._drop(digest, principal.key_id)
        self._negative = {d: v for d, v in self._negative.items() if v[1] > now}
        if len(self._entries) >= self._max_entries:
            self.clear()

    def _drop(self, digest: str, key_id: int) -> None:
        self._entries.pop(digest, None)
        digests = self._by_key_id.get(key_id)
        if digests is not None:
            digests.discard(digest)
            if not digests:
                del self._by_key_id[key_id]

    def invalidate_key_id(self, key_id: int) -> int:
        """Drops every entry of this key; returns how many were dropped."""
        self._generation += 1
        digests = self._by_key_id.pop(key_id, set())
        for digest in digests:
            self._entries.pop(digest, None)
        return len(digests)

    def clear(self) -> None:
        """Used when invalidation events may have been missed (consumer reconnect)."""
        self._generation += 1
        self._entries.clear()
        self._negative.clear()
        self._by_key_id.clear()

    def __len__(self) -> int:
        return len(self._entries)
