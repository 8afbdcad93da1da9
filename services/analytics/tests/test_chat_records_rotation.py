"""Chat content re-encrypted under a new ANALYTICS_SECRET_KEY (records/rotation.py), on the real
scratch PostgreSQL of conftest: every title, request and answer ends up under the current key and
reads the same; metadata-only rows stay NULL; a run stopped between batches resumes where it was; a
second run changes nothing; an unreadable ciphertext is reported and kept; the command exits 1 then."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.records.crypto import ContentBox
from tollgate.analytics.records.models import ChatEntry, ChatSession, ChatThread
from tollgate.analytics.records.rotation import reencrypt_chat_content
from tollgate.common.keyring import Keyring, key_id
from tollgate.common.reencrypt import Reencryption

OLD, NEW, LOST = "old-analytics-key-" + "o" * 30, "new-analytics-key-" + "n" * 30, "lost-key-" + "x" * 30
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture
async def db(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with sessions() as s, s.begin():
        await s.execute(text("TRUNCATE chat_sessions, chat_threads, chat_entries, chat_retention CASCADE"))
    yield sessions


async def seed(
    db: async_sessionmaker[AsyncSession], box: ContentBox, n: int, tag: str, *, full: bool = True
) -> None:
    """n sessions, each with a thread and two entries (content under `box`, or none: metadata)."""
    enc = box.maybe_encrypt if full else (lambda _text: None)
    async with db.begin() as s:
        for i in range(n):
            session = ChatSession(
                org_id="org_a", key_id=1, user_id="usr_a", external_id=f"{tag}{i}",
                title_enc=enc(f"title {i}"), created_at=NOW, updated_at=NOW,
            )  # fmt: skip
            s.add(session)
            await s.flush()
            thread = ChatThread(
                session_id=session.id, org_id="org_a", key_id=1, user_id="usr_a", thread_key=f"t:{tag}{i}",
                title_enc=enc(f"title {i}"), model="m", created_at=NOW, updated_at=NOW,
            )  # fmt: skip
            s.add(thread)
            await s.flush()
            for j in range(2):
                s.add(
                    ChatEntry(
                        thread_id=thread.id, org_id="org_a", event_id=f"{tag}{i}-{j}",
                        model="m", stream=False, status="ok", tokens_in=1, tokens_out=1,
                        messages_enc=enc(f'[{{"role": "user", "content": "q{i}-{j}"}}]'),
                        answer_enc=enc(f"a{i}-{j}"), created_at=NOW,
                    )
                )  # fmt: skip


async def contents(db: async_sessionmaker[AsyncSession]) -> dict[str, list[str | None]]:
    async with db() as s:
        sessions = await s.execute(select(ChatSession.title_enc).order_by(ChatSession.id))
        threads = await s.execute(select(ChatThread.title_enc).order_by(ChatThread.id))
        entries = await s.execute(select(ChatEntry.messages_enc, ChatEntry.answer_enc).order_by(ChatEntry.id))
        return {
            "sessions": list(sessions.scalars()),
            "threads": list(threads.scalars()),
            "entries": [value for row in entries for value in row],
        }


def plain(box: ContentBox, stored: dict[str, list[str | None]]) -> dict[str, list[str | None]]:
    return {table: [box.maybe_decrypt(v) for v in values] for table, values in stored.items()}


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


class Stop(Exception):
    pass


async def test_every_content_moves_to_the_current_key_in_batches_and_resumes(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await seed(db, ContentBox(OLD), 5, "old")
    await seed(db, ContentBox(NEW), 1, "new")  # written by a consumer already on the new key
    await seed(db, ContentBox(OLD), 1, "meta", full=False)  # metadata only: nothing to re-encrypt
    before = plain(ContentBox(Keyring(OLD, (NEW,))), await contents(db))
    rotating = ContentBox(Keyring(NEW, (OLD,)))

    # stopped after its second committed batch (batches of 2 rows): what was committed stays done
    batches: list[tuple[str, int]] = []

    def stop_after_two(table: str, last_id: int, report: Reencryption) -> None:
        batches.append((table, last_id))
        if len(batches) == 2:
            raise Stop

    with pytest.raises(Stop):
        await reencrypt_chat_content(db, rotating, batch=2, progress=stop_after_two)
    midway = await contents(db)
    moved = [v for v in midway["sessions"] if v and v.startswith(key_id(NEW) + ":")]
    assert len(moved) == 5  # 4 in the two batches + the one written under the new key
    # no thread was reached yet: the 5 old titles are still under the old key
    assert sum(1 for v in midway["threads"] if v and v.startswith(key_id(OLD) + ":")) == 5

    report = await reencrypt_chat_content(db, rotating, batch=2)
    # the rest: 1 session title, 5 thread titles, 5 x 2 entries x (messages + answer)
    assert (report.reencrypted, report.unreadable) == (1 + 5 + 20, [])
    after = await contents(db)
    only_new = ContentBox(NEW)  # what analytics runs on once the previous keys are dropped
    assert plain(only_new, after) == before
    for values in after.values():
        for value in values:
            assert value is None or value.startswith(key_id(NEW) + ":")
    assert after["entries"][-4:] == [None, None, None, None]  # the metadata-only entries

    again = await reencrypt_chat_content(db, rotating, batch=2)
    assert (again.reencrypted, again.already_current, again.unreadable) == (0, 0, [])
    assert await contents(db) == after  # nothing rewritten


async def test_an_unreadable_content_is_reported_by_row_and_kept(
    db: async_sessionmaker[AsyncSession],
) -> None:
    await seed(db, ContentBox(OLD), 2, "old")
    async with db.begin() as s:  # one answer under a key nobody lists any more
        entry = (await s.execute(select(ChatEntry).order_by(ChatEntry.id).limit(1))).scalar_one()
        entry.answer_enc = ContentBox(LOST).encrypt("lost answer")
        lost_ciphertext, lost_id = entry.answer_enc, entry.id
    report = await reencrypt_chat_content(db, ContentBox(Keyring(NEW, (OLD,))), batch=500)
    assert report.unreadable == [f"chat_entries.id={lost_id} answer_enc"]
    assert report.reencrypted == 2 + 2 + 4 * 2 - 1
    async with db() as s:
        kept = await s.get(ChatEntry, lost_id)
        assert kept is not None and kept.answer_enc == lost_ciphertext
        assert ContentBox(NEW).maybe_decrypt(kept.messages_enc) is not None  # the row's other column moved


async def test_the_command_uses_the_services_settings_and_fails_on_unreadable_content(
    database_url: str, db: async_sessionmaker[AsyncSession]
) -> None:
    await seed(db, ContentBox(OLD), 1, "old")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env |= {
        "ANALYTICS_DATABASE_URL": database_url,
        "ANALYTICS_SECRET_KEY": NEW,
        "ANALYTICS_PREVIOUS_SECRET_KEYS": OLD,
    }
    command = [sys.executable, "-m", "tollgate.analytics.rotate_secrets", "--batch", "1"]
    done = await asyncio.to_thread(run, command, env)
    assert done.returncode == 0, done.stderr
    assert "analytics: 6 re-encrypted" in done.stdout and "0 unreadable" in done.stdout
    assert "title 0" not in done.stdout + done.stderr  # no content in the output

    env["ANALYTICS_PREVIOUS_SECRET_KEYS"] = ""  # an old-key row nobody can open any more
    await seed(db, ContentBox(LOST), 1, "lost")
    lost = await asyncio.to_thread(run, command, env)
    assert lost.returncode == 1
    assert "0 re-encrypted" in lost.stdout and "6 unreadable" in lost.stdout
