"""argon2id password hashing, off the event loop and bounded in concurrency (each hash takes
tens of milliseconds of CPU and `memory_kib` of RAM)."""

from __future__ import annotations

import asyncio

import argon2
from argon2.exceptions import InvalidHashError, VerificationError


def argon2id(*, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=argon2.Type.ID
    )


class Passwords:
    def __init__(self, hasher: argon2.PasswordHasher, *, concurrency: int = 4) -> None:
        self._argon = hasher
        self._slots = asyncio.Semaphore(concurrency)
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._argon.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """Without a stored hash (unknown email) a decoy is verified, so the answer takes as long
        as for a real account and the timing does not tell which emails are registered."""
        if stored is None:
            if self._decoy is None:
                self._decoy = await self.hash("decoy password, never matches a login")
            await self._check(self._decoy, password)
            return False
        return await self._check(stored, password)

    def needs_rehash(self, stored: str) -> bool:
        """True after the cost parameters were raised: the login then stores a fresh hash."""
        return self._argon.check_needs_rehash(stored)

    async def _check(self, stored: str, password: str) -> bool:
        async with self._slots:
            try:
                return await asyncio.to_thread(self._argon.verify, stored, password)
            except (VerificationError, InvalidHashError):
                return False
