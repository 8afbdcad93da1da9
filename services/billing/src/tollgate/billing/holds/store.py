"""Billing's Redis state: cached wallets and open holds, changed only through the Lua scripts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import cast

from redis.asyncio import Redis

from tollgate.billing.holds import scripts


class ReserveStatus(IntEnum):
    NOT_CACHED = -1
    REFUSED = 0
    GRANTED = 1


@dataclass(frozen=True, slots=True)
class CachedWallet:
    balance_micros: int
    held_micros: int
    version: int

    @property
    def available_micros(self) -> int:
        return self.balance_micros - self.held_micros


@dataclass(frozen=True, slots=True)
class OrgSettlement:
    """What one org's settled batch changes in Redis: holds to drop and the DB's wallet state."""

    org_id: str
    hold_ids: Sequence[str]
    balance_micros: int | None  # None: no wallet row yet, leave the cache alone
    version: int


_MEMBER_SEP = "\n"


class HoldStore:
    def __init__(self, redis: Redis, *, prefix: str = "billing", wallet_ttl_seconds: int = 3600) -> None:
        self._redis = redis
        self._prefix = prefix
        self._wallet_ttl = wallet_ttl_seconds
        self._expiry_key = f"{prefix}:hold-expiry"
        # Registered once: each call is an EVALSHA, loading the script only if Redis lost it.
        self._reserve = redis.register_script(scripts.RESERVE)
        self._release = redis.register_script(scripts.RELEASE)
        self._sync = redis.register_script(scripts.SYNC_WALLET)
        self._settle = redis.register_script(scripts.SETTLE)

    def wallet_key(self, org_id: str) -> str:
        return f"{self._prefix}:wallet:{{{org_id}}}"

    def holds_key(self, org_id: str) -> str:
        return f"{self._prefix}:holds:{{{org_id}}}"

    def _keys(self, org_id: str) -> list[str]:
        return [self.wallet_key(org_id), self.holds_key(org_id), self._expiry_key]

    @staticmethod
    def _member(org_id: str, hold_id: str) -> str:
        return f"{org_id}{_MEMBER_SEP}{hold_id}"

    async def reserve(
        self, org_id: str, hold_id: str, amount_micros: int, expires_at: float
    ) -> tuple[ReserveStatus, int]:
        status, available = await self._reserve(
            keys=self._keys(org_id),
            args=[hold_id, amount_micros, int(expires_at), self._member(org_id, hold_id)],
        )
        return ReserveStatus(int(status)), int(available)

    async def release(self, org_id: str, hold_id: str) -> bool:
        released = await self._release(keys=self._keys(org_id), args=[hold_id, self._member(org_id, hold_id)])
        return bool(released)

    async def sync_wallet(self, org_id: str, balance_micros: int, version: int) -> bool:
        applied = await self._sync(keys=self._keys(org_id), args=[balance_micros, version, self._wallet_ttl])
        return bool(applied)

    async def settle(self, settlements: Sequence[OrgSettlement]) -> int:
        """Applies every org's settlement in one pipelined round trip; returns holds released."""
        if not settlements:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for s in settlements:
                args: list[str | int] = [
                    "" if s.balance_micros is None else s.balance_micros,
                    s.version,
                    self._wallet_ttl,
                ]
                for hold_id in s.hold_ids:
                    args.extend((hold_id, self._member(s.org_id, hold_id)))
                await self._settle(keys=self._keys(s.org_id), args=args, client=pipe)
            results = await pipe.execute()
        return sum(int(r) for r in results)

    async def read_wallet(self, org_id: str) -> CachedWallet | None:
        balance, held, version = await self._redis.hmget(
            self.wallet_key(org_id), ["balance", "held", "version"]
        )
        if balance is None:
            return None
        return CachedWallet(int(balance), int(held or 0), int(version or 0))

    async def expired(self, now: float, limit: int = 500) -> list[tuple[str, str]]:
        """(org_id, hold_id) of holds whose expiry time has passed, oldest first."""
        members = await self._redis.zrangebyscore(self._expiry_key, "-inf", now, start=0, num=limit)
        out = []
        for raw in cast(list[str | bytes], members):
            member = raw.decode() if isinstance(raw, bytes) else raw
            org_id, _, hold_id = member.partition(_MEMBER_SEP)
            out.append((org_id, hold_id))
        return out

    async def ping(self) -> bool:
        return bool(await self._redis.ping())
