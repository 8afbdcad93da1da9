"""Chat records in analytics: events become encrypted sessions/threads/entries; scopes, search,
deletion and retention against a real PostgreSQL (the scratch database of conftest.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.records.crypto import ContentBox
from tollgate.analytics.records.repository import Scope
from tollgate.analytics.records.schemas import SessionQuery, ThreadQuery
from tollgate.analytics.records.service import (
    ChatRecordService,
    SessionNotFound,
    ThreadNotFound,
    admin_scope,
    prepare,
    user_scope,
)
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden
from tollgate.contracts.v1 import events_pb2

BOX = ContentBox("unit-test-secret")
NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)


def event(
    event_id: str, *, mode: str = "full", session: str = "s1", user: str = "hello", **kw: object
) -> events_pb2.ChatRecorded:
    messages = kw.pop("messages", [{"role": "user", "content": user}])
    fields: dict[str, object] = {
        "event_id": event_id,
        "org_id": "org_a",
        "key_id": 1,
        "user_id": "usr_a",
        "session_id": session,
        "mode": mode,
        "retention_days": 30,
        "model": "m",
        "status": "ok",
        "tokens_in": 3,
        "tokens_out": 4,
        "created_at_unix_ms": int(NOW.timestamp() * 1000),
        "messages_json": orjson.dumps(messages).decode() if mode == "full" else "",
        "answer": f"answer to {user}" if mode == "full" else "",
    }
    fields.update(kw)
    return events_pb2.ChatRecorded(**fields)  # type: ignore[arg-type]


def principal(**kw: object) -> Principal:
    base: dict[str, object] = {
        "key_id": 1,
        "org_id": "org_a",
        "user_id": "usr_a",
        "role": "user",
        "group_id": 0,
        "permissions": ("read", "write", "delete"),
        "key_prefix": "tg_x",
        "expires_at_unix": 0,
        "month_quota_micros": 0,
    }
    base.update(kw)
    return Principal(**base)  # type: ignore[arg-type]


def test_prepare_encrypts_content_and_groups_a_conversation() -> None:
    first = prepare(
        BOX, event("e1", messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "q1"}])
    )
    follow = prepare(
        BOX,
        event(
            "e2",
            messages=[
                {"role": "system", "content": "sys"},
                {"role": "user", "content": "q1"},
                {"role": "assistant", "content": "a1"},
                {"role": "user", "content": "q2"},
            ],
        ),
    )
    other = prepare(BOX, event("e3", user="different"))
    assert first is not None and follow is not None and other is not None
    assert first.thread_key == follow.thread_key != other.thread_key
    # stored as ciphertext that decrypts to the messages (a substring test on base64 is flaky: "q1"
    # turns up in random ciphertext one time in twenty)
    assert first.messages_enc is not None and not first.messages_enc.lstrip().startswith(("[", "{"))
    assert "q1" in BOX.decrypt(first.messages_enc) and '"role": "user"' not in first.messages_enc
    assert BOX.decrypt(first.answer_enc or "") == "answer to hello"
    assert BOX.decrypt(first.session_title_enc or "") == "q1"


def test_prepare_metadata_off_and_explicit_threads() -> None:
    meta = prepare(BOX, event("e1", mode="metadata"))
    assert (
        meta is not None
        and meta.messages_enc is None
        and meta.answer_enc is None
        and meta.session_title_enc is None
    )
    assert meta.thread_key == "e:e1"  # no content to group by: a thread per request
    assert prepare(BOX, event("e2", mode="off")) is None
    assert prepare(BOX, event("e3", mode="")) is None
    explicit = prepare(BOX, event("e4", thread_id="t-9"))
    assert explicit is not None and explicit.thread_key == "t:t-9"
    lone = prepare(BOX, event("e5", session=""))
    assert lone is not None and lone.session_external_id == "e5"


def test_scopes() -> None:
    assert admin_scope(principal(role="admin")) == Scope()
    assert admin_scope(principal(org_role="admin")) == Scope(org_id="org_a")
    with pytest.raises(Forbidden):
        admin_scope(principal(org_role="member"))
    assert user_scope(principal()) == Scope(org_id="org_a", user_id="usr_a")
    assert user_scope(principal(user_id="", key_id=7)) == Scope(org_id="org_a", key_id=7)


@pytest.fixture
async def db(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions() as s, s.begin():
        await s.execute(text("TRUNCATE chat_sessions, chat_threads, chat_entries, chat_retention CASCADE"))
    yield sessions


async def test_store_is_idempotent_and_lists_by_scope(db: async_sessionmaker[AsyncSession]) -> None:
    service = ChatRecordService(BOX, clock=lambda: NOW)
    entries = [
        prepare(BOX, event("e1", user="alpha one")),
        prepare(BOX, event("e2", user="beta two", session="s2")),
        prepare(BOX, event("e3", user="alpha three", session="s3", user_id="usr_b", key_id=2)),
        prepare(BOX, event("e4", user="elsewhere", org_id="org_b", session="s4")),
    ]
    async with db() as s, s.begin():
        assert await service.store(s, [e for e in entries if e]) == 4
    async with db() as s, s.begin():
        assert await service.store(s, [e for e in entries if e]) == 0  # a redelivery stores nothing

    async with db() as s:
        mine = await service.list_sessions(s, Scope(org_id="org_a", user_id="usr_a"), SessionQuery())
        assert {x.session_id for x in mine.data} == {"s1", "s2"} and mine.total == 2
        org = await service.list_sessions(s, Scope(org_id="org_a"), SessionQuery(q="ALPHA"))
        assert org.total == 2 and {x.title for x in org.data} == {"alpha one", "alpha three"}
        paged = await service.list_sessions(
            s, Scope(org_id="org_a"), SessionQuery(q="alpha", limit=1, offset=1)
        )
        assert paged.total == 2 and len(paged.data) == 1
        by_key = await service.list_sessions(s, Scope(org_id="org_a"), SessionQuery(key_id=2))
        assert [x.session_id for x in by_key.data] == ["s3"]
        everyone = await service.list_sessions(s, Scope(), SessionQuery())
        assert everyone.total == 4
        theirs = next(x for x in everyone.data if x.org_id == "org_b")
        with pytest.raises(SessionNotFound):
            await service.session_detail(s, Scope(org_id="org_a"), theirs.id)
        threads = await service.list_threads(
            s, Scope(org_id="org_a"), ThreadQuery(session_id=mine.data[0].id)
        )
        assert threads.total == 1
        detail = await service.thread_detail(s, Scope(org_id="org_a"), threads.data[0].id)
        assert detail.entries[0].answer is not None and detail.entries[0].answer.startswith("answer to")
        with pytest.raises(ThreadNotFound):
            await service.thread_detail(s, Scope(org_id="org_b"), threads.data[0].id)


async def test_delete_purge_and_retention(db: async_sessionmaker[AsyncSession]) -> None:
    service = ChatRecordService(BOX, clock=lambda: NOW + dt.timedelta(days=31))
    old = prepare(
        BOX,
        event("e1", session="old", created_at_unix_ms=int((NOW - dt.timedelta(days=1)).timestamp() * 1000)),
    )
    fresh = prepare(
        BOX,
        event(
            "e2", session="fresh", created_at_unix_ms=int((NOW + dt.timedelta(days=30)).timestamp() * 1000)
        ),
    )
    gone = prepare(BOX, event("e3", session="gone"))
    other = prepare(BOX, event("e4", session="x", org_id="org_b"))
    async with db() as s, s.begin():
        await service.store(s, [e for e in (old, fresh, gone, other) if e])
    async with db() as s, s.begin():
        page = await service.list_sessions(s, Scope(org_id="org_a"), SessionQuery(q="gone"))
        await service.delete_session(s, Scope(org_id="org_a"), page.data[0].id)
        with pytest.raises(SessionNotFound):
            await service.delete_session(s, Scope(org_id="org_a"), page.data[0].id)
    async with db() as s, s.begin():
        purged = await service.purge_expired(s)
        assert purged.entries == 2 and purged.sessions == 2  # org_a's "old" and org_b's (same day)
    async with db() as s, s.begin():
        left = await service.list_sessions(s, Scope(), SessionQuery())
        assert [x.session_id for x in left.data] == ["fresh"]
        result = await service.purge_org(s, principal(org_role="owner"), None)
        assert result.sessions == 1
