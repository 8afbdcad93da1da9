"""The rules of chat records (docs/chat-records.md): who sees what, how a recorded request finds
its session and thread, search over encrypted titles, deletion and retention. Never commits.

Visibility: the /user/* routes show the caller's own records (their user's, or the key's for a
user-less key); the /admin/* routes an organisation owner's or admin's whole organisation, and a
platform admin key every organisation. A record outside the caller's view answers 404, as if it
did not exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.records.crypto import ContentBox
from tollgate.analytics.records.models import ChatEntry, ChatSession, ChatThread
from tollgate.analytics.records.repository import NewEntry, RecordRepository, Scope
from tollgate.analytics.records.schemas import (
    EntryInfo,
    Message,
    Purged,
    SessionDetail,
    SessionInfo,
    SessionPage,
    SessionQuery,
    ThreadDetail,
    ThreadInfo,
    ThreadPage,
    ThreadQuery,
)
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden, NotFound
from tollgate.contracts.v1 import events_pb2

TITLE_CHARS = 200
RECORDED_MODES = ("metadata", "full")


class SessionNotFound(NotFound):
    code = "session_not_found"


class ThreadNotFound(NotFound):
    code = "thread_not_found"


def admin_scope(principal: Principal) -> Scope:
    if principal.is_admin:
        return Scope()
    if principal.is_org_admin:
        return Scope(org_id=principal.org_id)
    raise Forbidden(
        "This route needs an admin API key, or the key of an organisation's owner or admin.",
        code="admin_required",
    )


def user_scope(principal: Principal) -> Scope:
    if principal.user_id:
        return Scope(org_id=principal.org_id, user_id=principal.user_id)
    return Scope(org_id=principal.org_id, key_id=principal.key_id)


def _first(messages: list[dict[str, str]], role: str) -> str:
    return next((m.get("content", "") for m in messages if m.get("role") == role), "")


def prepare(box: ContentBox, ev: events_pb2.ChatRecorded) -> NewEntry | None:
    """The rows a ChatRecorded event makes (encrypting its content); None for one that records
    nothing (mode off or unknown). CPU work: the consumer runs it off the event loop."""
    if ev.mode not in RECORDED_MODES or not ev.event_id or not ev.org_id:
        return None
    full = ev.mode == "full"
    messages: list[dict[str, str]] = []
    if full and ev.messages_json:
        loaded = orjson.loads(ev.messages_json)
        messages = [m for m in loaded if isinstance(m, dict)] if isinstance(loaded, list) else []
    if ev.thread_id:
        thread_key = "t:" + ev.thread_id
    elif full and messages:
        # one conversation: the same system prompt and first user message (a follow-up resends them)
        thread_key = "h:" + box.fingerprint(_first(messages, "system") + "\x1f" + _first(messages, "user"))
    else:
        thread_key = "e:" + ev.event_id
    title = _first(messages, "user")[:TITLE_CHARS] if full else None
    title_enc = box.maybe_encrypt(title)
    return NewEntry(
        org_id=ev.org_id,
        key_id=ev.key_id,
        user_id=ev.user_id,
        session_external_id=ev.session_id or ev.event_id,
        thread_key=thread_key,
        session_title_enc=title_enc,
        thread_title_enc=title_enc,
        event_id=ev.event_id,
        model=ev.model,
        stream=ev.stream,
        status=ev.status,
        tokens_in=ev.tokens_in,
        tokens_out=ev.tokens_out,
        messages_enc=box.encrypt(orjson.dumps(messages).decode()) if full else None,
        answer_enc=box.encrypt(ev.answer) if full else None,
        created_at=dt.datetime.fromtimestamp(ev.created_at_unix_ms / 1000, dt.UTC),
        retention_days=ev.retention_days or 30,
    )


class ChatRecordService:
    def __init__(
        self,
        box: ContentBox,
        *,
        search_scan: int = 1000,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        """`search_scan`: how many of the caller's newest sessions (threads) a `q` search decrypts."""
        self.box = box
        self._scan = search_scan
        self._now = clock

    # --- storing ---

    async def store(self, db: AsyncSession, entries: Sequence[NewEntry]) -> int:
        repo = RecordRepository(db)
        return sum([await repo.store(e) for e in entries])

    # --- reading ---

    def _matches(self, q: str, rows: Sequence[tuple[int, str, str | None]]) -> list[int]:
        needle = q.casefold()
        box = self.box
        return [
            rid
            for rid, label, title_enc in rows
            if needle in label.casefold()
            or (title_enc is not None and needle in box.decrypt(title_enc).casefold())
        ]

    def _title(self, enc: str | None) -> str | None:
        return self.box.maybe_decrypt(enc)

    async def list_sessions(self, db: AsyncSession, scope: Scope, query: SessionQuery) -> SessionPage:
        repo = RecordRepository(db)
        if query.q:
            rows = await repo.session_candidates(scope, query.key_id, self._scan)
            matched = await asyncio.to_thread(self._matches, query.q, rows)
            sessions = await repo.sessions_by_ids(matched[query.offset : query.offset + query.limit])
            total = len(matched)
        else:
            sessions, total = await repo.sessions_page(scope, query.key_id, query.limit, query.offset)
        counts = await repo.counts([s.id for s in sessions])
        data = [self._session_info(s, counts.get(s.id, (0, 0))) for s in sessions]
        return SessionPage(data=data, total=total, limit=query.limit, offset=query.offset)

    def _session_info(self, s: ChatSession, counts: tuple[int, int]) -> SessionInfo:
        return SessionInfo(
            id=s.id,
            session_id=s.external_id,
            org_id=s.org_id,
            key_id=s.key_id,
            user_id=s.user_id,
            title=self._title(s.title_enc),
            thread_count=counts[0],
            entry_count=counts[1],
            created_at=s.created_at,
            updated_at=s.updated_at,
        )

    def _thread_info(self, t: ChatThread, entries: int) -> ThreadInfo:
        return ThreadInfo(
            id=t.id,
            session_id=t.session_id,
            org_id=t.org_id,
            key_id=t.key_id,
            user_id=t.user_id,
            title=self._title(t.title_enc),
            model=t.model,
            entry_count=entries,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )

    async def session_detail(self, db: AsyncSession, scope: Scope, session_id: int) -> SessionDetail:
        repo = RecordRepository(db)
        s = await repo.get_session(scope, session_id)
        if s is None:
            raise SessionNotFound(f"No session with id {session_id}.", param="id")
        threads = await repo.threads_of(s.id)
        entries = await repo.entry_counts([t.id for t in threads])
        info = self._session_info(s, (len(threads), sum(entries.values())))
        return SessionDetail(
            **info.model_dump(), threads=[self._thread_info(t, entries.get(t.id, 0)) for t in threads]
        )

    async def list_threads(self, db: AsyncSession, scope: Scope, query: ThreadQuery) -> ThreadPage:
        repo = RecordRepository(db)
        if query.q:
            rows = await repo.thread_candidates(scope, query.key_id, query.session_id, self._scan)
            matched = await asyncio.to_thread(self._matches, query.q, rows)
            threads = await repo.threads_by_ids(matched[query.offset : query.offset + query.limit])
            total = len(matched)
        else:
            threads, total = await repo.threads_page(
                scope, query.key_id, query.session_id, query.limit, query.offset
            )
        entries = await repo.entry_counts([t.id for t in threads])
        data = [self._thread_info(t, entries.get(t.id, 0)) for t in threads]
        return ThreadPage(data=data, total=total, limit=query.limit, offset=query.offset)

    async def thread_detail(self, db: AsyncSession, scope: Scope, thread_id: int) -> ThreadDetail:
        repo = RecordRepository(db)
        t = await repo.get_thread(scope, thread_id)
        if t is None:
            raise ThreadNotFound(f"No thread with id {thread_id}.", param="id")
        rows = await repo.entries_of(t.id)
        entries = await asyncio.to_thread(self._entries, rows)
        return ThreadDetail(**self._thread_info(t, len(rows)).model_dump(), entries=entries)

    def _entries(self, rows: Sequence[ChatEntry]) -> list[EntryInfo]:
        out = []
        for e in rows:
            messages_json = self.box.maybe_decrypt(e.messages_enc)
            messages = None if messages_json is None else [Message(**m) for m in orjson.loads(messages_json)]
            out.append(
                EntryInfo(
                    id=e.id,
                    request_id=e.event_id,
                    model=e.model,
                    stream=e.stream,
                    status=e.status,
                    prompt_tokens=e.tokens_in,
                    completion_tokens=e.tokens_out,
                    messages=messages,
                    answer=self.box.maybe_decrypt(e.answer_enc),
                    created_at=e.created_at,
                )
            )
        return out

    # --- deleting ---

    async def delete_session(self, db: AsyncSession, scope: Scope, session_id: int) -> None:
        repo = RecordRepository(db)
        if await repo.get_session(scope, session_id) is None:
            raise SessionNotFound(f"No session with id {session_id}.", param="id")
        await repo.delete_session(session_id)

    async def purge_org(self, db: AsyncSession, principal: Principal, org_id: str | None) -> Purged:
        """Every record of one organisation: an organisation admin's own (another's: 404), any with a
        platform admin key (which names it)."""
        scope = admin_scope(principal)
        target = org_id or principal.org_id
        if scope.org_id is not None and target != scope.org_id:
            raise NotFound(
                f"No organisation with id {target!r}.", code="organization_not_found", param="org_id"
            )
        sessions = await RecordRepository(db).purge_org(target)
        return Purged(org_id=target, sessions=sessions)

    async def purge_expired(self, db: AsyncSession) -> Purged:
        entries, sessions = await RecordRepository(db).purge_expired(self._now())
        return Purged(org_id=None, sessions=sessions, entries=entries)
