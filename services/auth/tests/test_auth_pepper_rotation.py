"""Rotating AUTH_KEY_PEPPER (keys/keygen.py, keys/service.py, keys/peppers.py): keys, guard secrets,
invitations and the bootstrap admin key made under the previous pepper keep working and move to the
current one on use; the hot path pays a second lookup only on a miss; `peppers` counts what is left.
On a database of its own: these tests rewrite hashes that other modules' fixtures rely on."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from auth_testkit import RecordingEvents, register
from prometheus_client import CollectorRegistry
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.app import build_app
from tollgate.auth.keys.bootstrap import ensure_bootstrap_admin
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.last_used import LastUsedRecorder
from tollgate.auth.keys.peppers import count_by_pepper, label_unlabelled, report
from tollgate.auth.keys.schemas import ApplyKeyRequest
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.sessions.passwords import Passwords
from tollgate.auth.sessions.ratelimit import LoginLimiter
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.sessions.tokens import TokenIssuer
from tollgate.auth.web import AuthRuntime
from tollgate.common.api_keys import hash_api_key
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.keyring import Keyring, key_id
from tollgate.common.migrations import upgrade_to_head

ADMIN_DSN = os.environ.get("AUTH_TEST_ADMIN_URL", "postgresql://tollgate@127.0.0.1:25532/postgres")
ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
OLD, NEW = "old-pepper-" + "o" * 32, "new-pepper-" + "n" * 32
ROTATING = Keyring(NEW, (OLD,))
GUARD_BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def rotation_db() -> Iterator[str]:
    name = f"scratch_auth_pepper_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    try:
        upgrade_to_head(str(ALEMBIC_INI), url)
        yield url
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def db(rotation_db: str) -> AsyncIterator[tuple[AsyncEngine, async_sessionmaker[AsyncSession]]]:
    engine = make_engine(rotation_db, pool_size=12)
    yield engine, make_sessionmaker(engine)
    await engine.dispose()


@dataclass
class Node:
    """One auth process's key handling under one pepper configuration, on the shared database."""

    keys: KeyService
    hasher: KeyHasher
    client: httpx.AsyncClient


@pytest.fixture
def node(
    db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
    passwords: Passwords,
    tokens: TokenIssuer,
    limiter: LoginLimiter,
) -> Any:
    engine, sessions = db

    @asynccontextmanager
    async def start(peppers: Keyring | str) -> AsyncIterator[Node]:
        hasher = KeyHasher(peppers)
        keys = KeyService(hasher, LastUsedRecorder(sessions, interval_s=3600))
        identity = SessionService(passwords, tokens, limiter, keys)
        app = build_app(AuthRuntime(sessions, keys, RecordingEvents(), identity), engine, CollectorRegistry())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
            yield Node(keys, hasher, client)

    return start


async def stored(sessions: async_sessionmaker[AsyncSession], key_id_: int) -> dict[str, Any]:
    async with sessions() as session:
        row = await session.execute(
            text("SELECT key_hash, key_pepper_id, secret_hash, secret_pepper_id FROM api_keys WHERE id = :i"),
            {"i": key_id_},
        )
        return dict(row.mappings().one())


async def admin_key(sessions: async_sessionmaker[AsyncSession], keys: KeyService) -> str:
    async with sessions.begin() as session:
        return (await keys.apply(session, ApplyKeyRequest(name="rotation-admin", role="admin"))).api_key


async def test_a_pepper_rotation_keeps_keys_secrets_invitations_and_the_admin_key_working(
    node: Any, db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]]
) -> None:
    _, sessions = db
    boot_key = f"tg_bootstrap_{uuid.uuid4().hex}"
    async with node(OLD) as before:
        admin = {"Authorization": f"Bearer {await admin_key(sessions, before.keys)}"}
        key = (await before.client.post("/admin/api-key/apply", json={"name": "k"}, headers=admin)).json()
        secret = await before.client.post("/admin/api-key/secret", json={"id": key["id"]}, headers=admin)
        pair = {"Authorization": key["api_key"], "SecretKey": secret.json()["secret_key"]}
        ada, bob = await register(before.client), await register(before.client)
        ada_auth = {"Authorization": f"Bearer {ada['access_token']}"}
        org = (await before.client.post("/auth/orgs", json={"name": "Acme"}, headers=ada_auth)).json()["id"]
        invited = await before.client.post(
            f"/auth/orgs/{org}/invitations",
            json={"email": bob["user"]["email"], "role": "member"},
            headers=ada_auth,
        )
        async with sessions.begin() as session:
            await ensure_bootstrap_admin(session, before.hasher, boot_key, utcnow())
        assert (await stored(sessions, key["id"]))["key_pepper_id"] == key_id(OLD)

    async with node(ROTATING) as during:
        assert (await during.client.post("/api/guard/auth", json=GUARD_BODY, headers=pair)).status_code == 200
        row = await stored(sessions, key["id"])
        assert row["key_hash"] == hash_api_key(key["api_key"], NEW) and row["key_pepper_id"] == key_id(NEW)
        assert row["secret_hash"] == hash_api_key(pair["SecretKey"], NEW)
        assert row["secret_pepper_id"] == key_id(NEW)
        accepted = await during.client.post(
            "/auth/invitations/accept",
            json={"token": invited.json()["token"]},
            headers={"Authorization": f"Bearer {bob['access_token']}"},
        )
        assert accepted.status_code == 200, accepted.text
        async with sessions.begin() as session:
            boot_before = (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar_one()
            # the same row moves to the new pepper: nothing is revoked, no second admin key appears
            assert await ensure_bootstrap_admin(session, during.hasher, boot_key, utcnow()) == []
            assert (await session.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == boot_before
        async with sessions() as session:
            counts = await count_by_pepper(session, utcnow())
        # what is left under the old pepper: the admin key made first, never used since the rotation
        assert counts.not_current(key_id(NEW)) == 1 and counts.keys[key_id(OLD)] == 1
        text_report = report(counts, ROTATING)
        assert "AUTH_KEY_PREVIOUS_PEPPERS[1]" in text_report and "1 usable keys or secrets" in text_report
        assert OLD not in text_report and NEW not in text_report

    async with node(NEW) as after:  # the old pepper dropped
        assert (await after.client.post("/api/guard/auth", json=GUARD_BODY, headers=pair)).status_code == 200
        boot = await after.client.get("/admin/api-key/list", headers={"Authorization": f"Bearer {boot_key}"})
        assert boot.status_code == 200, boot.text
        # the key nobody presented during the rotation is now unknown: what the count warned about
        assert (await after.client.get("/admin/api-key/list", headers=admin)).status_code == 401


async def test_only_a_miss_costs_a_second_lookup_and_only_during_a_rotation(
    db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    engine, sessions = db
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    current = KeyService(KeyHasher(NEW), LastUsedRecorder(sessions, interval_s=3600))
    rotating = KeyService(KeyHasher(ROTATING), LastUsedRecorder(sessions, interval_s=3600))
    issued = await admin_key(sessions, current)
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        for service, credential, expected in [
            (rotating, issued, 1),  # a hit under the current pepper: one indexed query, no write
            (rotating, "tg_unknown_" + uuid.uuid4().hex, 2),  # a miss: the previous pepper's probe too
            (current, "tg_unknown_" + uuid.uuid4().hex, 1),  # outside a rotation a miss is one query
        ]:
            statements.clear()
            async with sessions() as session:
                await service.authenticate(session, credential)
            assert len(statements) == expected, statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_concurrent_first_uses_under_the_old_pepper_all_pass_and_move_the_hash_once(
    db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = db
    old = KeyService(KeyHasher(OLD), LastUsedRecorder(sessions, interval_s=3600))
    plaintext = await admin_key(sessions, old)
    rotating = KeyService(KeyHasher(ROTATING), LastUsedRecorder(sessions, interval_s=3600))

    async def use() -> bool:
        async with sessions.begin() as session:
            return (await rotating.authenticate(session, plaintext)).principal is not None

    assert await asyncio.gather(*(use() for _ in range(10))) == [True] * 10
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT key_pepper_id FROM api_keys WHERE key_hash = :h"),
            {"h": hash_api_key(plaintext, NEW)},
        )
        assert rows.scalars().all() == [key_id(NEW)]
    assert await use()  # and again: nothing left to move


async def test_a_revoked_key_stays_revoked_across_the_rotation(
    db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = db
    old = KeyService(KeyHasher(OLD), LastUsedRecorder(sessions, interval_s=3600))
    plaintext = await admin_key(sessions, old)
    async with sessions.begin() as session:
        found = await old.authenticate(session, plaintext)
        assert found.principal is not None
        await old.revoke(session, found.principal.key_id)
    for peppers in (ROTATING, NEW):
        service = KeyService(KeyHasher(peppers), LastUsedRecorder(sessions, interval_s=3600))
        async with sessions.begin() as session:
            assert (await service.authenticate(session, plaintext)).reason == "revoked"


async def test_hashes_from_before_pepper_ids_are_labelled_at_start_or_on_use(
    db: tuple[AsyncEngine, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = db
    current = KeyService(KeyHasher(NEW), LastUsedRecorder(sessions, interval_s=3600))
    first, second = await admin_key(sessions, current), await admin_key(sessions, current)
    hashes = [hash_api_key(first, NEW), hash_api_key(second, NEW)]
    async with sessions.begin() as session:
        await session.execute(
            text("UPDATE api_keys SET key_pepper_id = NULL WHERE key_hash = ANY(:h)"), {"h": hashes}
        )
    rotating = KeyService(KeyHasher(ROTATING), LastUsedRecorder(sessions, interval_s=3600))
    async with sessions.begin() as session:
        assert (await rotating.authenticate(session, first)).principal is not None  # labelled on use
        assert await label_unlabelled(session, key_id(NEW)) >= 1  # the other one, at a start
        labels = await session.execute(
            text("SELECT key_pepper_id FROM api_keys WHERE key_hash = ANY(:h)"), {"h": hashes}
        )
        assert labels.scalars().all() == [key_id(NEW)] * 2
        assert await label_unlabelled(session, key_id(NEW)) == 0  # nothing left to label


def test_the_hasher_keeps_the_current_pepper_for_new_hashes() -> None:
    hasher = KeyHasher(ROTATING)
    assert hasher.hash("tg_x") == hash_api_key("tg_x", NEW) and hasher.pepper_id == key_id(NEW)
    assert hasher.previous_hashes("tg_x") == {hash_api_key("tg_x", OLD): key_id(OLD)}
    assert hasher.all_hashes("tg_x") == [hash_api_key("tg_x", NEW), hash_api_key("tg_x", OLD)]
    assert KeyHasher(NEW).previous_hashes("tg_x") == {}
