"""argon2id password hashing."""

from __future__ import annotations

import threading

import argon2

from tollgate.auth.sessions.passwords import Passwords, argon2id


async def test_hash_is_argon2id_salted_and_verifies(passwords: Passwords) -> None:
    first = await passwords.hash("correct horse battery")
    second = await passwords.hash("correct horse battery")
    assert first.startswith("$argon2id$") and "correct horse" not in first
    assert first != second  # salted
    assert await passwords.verify(first, "correct horse battery")
    assert not await passwords.verify(first, "correct horse battery!")


async def test_no_stored_hash_or_a_corrupt_one_never_verifies(passwords: Passwords) -> None:
    assert not await passwords.verify(None, "anything at all")
    assert not await passwords.verify("not-a-hash", "anything at all")


async def test_hashing_and_verifying_run_off_the_event_loop_thread() -> None:
    threads: list[int] = []

    class ThreadRecordingHasher(argon2.PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            threads.append(threading.get_ident())
            return super().hash(password, salt=salt)

        def verify(self, hash: str | bytes, password: str | bytes) -> bool:
            threads.append(threading.get_ident())
            return super().verify(hash, password)

    passwords = Passwords(ThreadRecordingHasher(time_cost=1, memory_cost=1024, parallelism=1))
    stored = await passwords.hash("password-123")
    assert await passwords.verify(stored, "password-123")
    assert len(threads) == 2 and threading.get_ident() not in threads


async def test_raised_cost_asks_for_a_rehash(passwords: Passwords) -> None:
    stored = await passwords.hash("password-123")
    stronger = Passwords(argon2id(time_cost=2, memory_kib=1024, parallelism=1))
    assert not passwords.needs_rehash(stored)
    assert stronger.needs_rehash(stored)
    assert await stronger.verify(stored, "password-123")  # old hashes still verify
