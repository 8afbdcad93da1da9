"""SQL of chat records (SQLAlchemy 2.0 async). Scoping (which organisation, key or user a caller
may see) arrives as a `Scope`; the rules deciding it are in service.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, DateTime, Select, and_, delete, func, literal, select, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.analytics.records.models import ChatEntry, ChatRetention, ChatSession, ChatThread


@dataclass(frozen=True, slots=True)
class Scope:
    """None fields are not filtered on (a platform admin sees every organisation)."""

    org_id: str | None = None
    user_id: str | None = None
    key_id: int | None = None


@dataclass(frozen=True, slots=True)
class NewEntry:
    org_id: str
    key_id: int
    user_id: str
    session_external_id: str
    thread_key: str
    session_title_enc: str | None
    thread_title_enc: str | None
    event_id: str
    model: str
    stream: bool
    status: str
    tokens_in: int
    tokens_out: int
    messages_enc: str | None
    answer_enc: str | None
    created_at: dt.datetime
    retention_days: int


def _scoped(model: type[ChatSession] | type[ChatThread], scope: Scope) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = []
    if scope.org_id is not None:
        conds.append(model.org_id == scope.org_id)
    if scope.user_id is not None:
        conds.append(model.user_id == scope.user_id)
    if scope.key_id is not None:
        conds.append(model.key_id == scope.key_id)
    return and_(true(), *conds)


class RecordRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- writing (the consumer) ---

    async def store(self, e: NewEntry) -> bool:
        """One recorded request; False when its event id is already stored (a redelivery)."""
        s = self.session
        seen = await s.scalar(select(ChatEntry.id).where(ChatEntry.event_id == e.event_id))
        if seen is not None:
            return False
        stmt = insert(ChatSession).values(
            org_id=e.org_id,
            key_id=e.key_id,
            user_id=e.user_id,
            external_id=e.session_external_id,
            title_enc=e.session_title_enc,
            created_at=e.created_at,
            updated_at=e.created_at,
        )
        stmt = stmt.on_conflict_do_update(
            constraint="uq_chat_sessions_org_key_external",
            set_={"updated_at": func.greatest(ChatSession.updated_at, stmt.excluded.updated_at)},
        ).returning(ChatSession.id)
        session_id = (await s.execute(stmt)).scalar_one()
        tstmt = insert(ChatThread).values(
            session_id=session_id,
            org_id=e.org_id,
            key_id=e.key_id,
            user_id=e.user_id,
            thread_key=e.thread_key,
            title_enc=e.thread_title_enc,
            model=e.model,
            created_at=e.created_at,
            updated_at=e.created_at,
        )
        tstmt = tstmt.on_conflict_do_update(
            constraint="uq_chat_threads_session_key",
            set_={
                "updated_at": func.greatest(ChatThread.updated_at, tstmt.excluded.updated_at),
                "model": tstmt.excluded.model,
            },
        ).returning(ChatThread.id)
        thread_id = (await s.execute(tstmt)).scalar_one()
        estmt = (
            insert(ChatEntry)
            .values(
                thread_id=thread_id,
                org_id=e.org_id,
                event_id=e.event_id,
                model=e.model,
                stream=e.stream,
                status=e.status,
                tokens_in=e.tokens_in,
                tokens_out=e.tokens_out,
                messages_enc=e.messages_enc,
                answer_enc=e.answer_enc,
                created_at=e.created_at,
            )
            .on_conflict_do_nothing(constraint="uq_chat_entries_event_id")
            .returning(ChatEntry.id)
        )
        inserted = (await s.execute(estmt)).scalar_one_or_none() is not None
        rstmt = insert(ChatRetention).values(
            org_id=e.org_id, retention_days=e.retention_days, updated_at=e.created_at
        )
        rstmt = rstmt.on_conflict_do_update(
            index_elements=[ChatRetention.org_id],
            set_={"retention_days": rstmt.excluded.retention_days, "updated_at": rstmt.excluded.updated_at},
            where=ChatRetention.updated_at <= rstmt.excluded.updated_at,
        )
        await s.execute(rstmt)
        return inserted

    # --- reading ---

    def _sessions(self, scope: Scope, key_id: int | None) -> Select[tuple[ChatSession]]:
        stmt = select(ChatSession).where(_scoped(ChatSession, scope))
        if key_id is not None:
            stmt = stmt.where(ChatSession.key_id == key_id)
        return stmt

    async def session_candidates(
        self, scope: Scope, key_id: int | None, limit: int
    ) -> Sequence[tuple[int, str, str | None]]:
        """The newest `limit` sessions' (id, external id, encrypted title): what `q` searches."""
        stmt = (
            select(ChatSession.id, ChatSession.external_id, ChatSession.title_enc)
            .where(_scoped(ChatSession, scope))
            .order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())
            .limit(limit)
        )
        if key_id is not None:
            stmt = stmt.where(ChatSession.key_id == key_id)
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]

    async def sessions_page(
        self, scope: Scope, key_id: int | None, limit: int, offset: int
    ) -> tuple[Sequence[ChatSession], int]:
        base = self._sessions(scope, key_id)
        total = await self.session.scalar(select(func.count()).select_from(base.subquery()))
        rows = await self.session.scalars(
            base.order_by(ChatSession.updated_at.desc(), ChatSession.id.desc()).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def sessions_by_ids(self, ids: Sequence[int]) -> Sequence[ChatSession]:
        rows = await self.session.scalars(select(ChatSession).where(ChatSession.id.in_(ids)))
        order = {i: n for n, i in enumerate(ids)}
        return sorted(rows, key=lambda r: order[r.id])

    async def counts(self, session_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(threads, entries) per session."""
        if not session_ids:
            return {}
        stmt = (
            select(ChatThread.session_id, func.count(func.distinct(ChatThread.id)), func.count(ChatEntry.id))
            .join(ChatEntry, ChatEntry.thread_id == ChatThread.id, isouter=True)
            .where(ChatThread.session_id.in_(session_ids))
            .group_by(ChatThread.session_id)
        )
        return {r[0]: (int(r[1]), int(r[2])) for r in (await self.session.execute(stmt)).all()}

    async def entry_counts(self, thread_ids: Sequence[int]) -> dict[int, int]:
        if not thread_ids:
            return {}
        stmt = (
            select(ChatEntry.thread_id, func.count())
            .where(ChatEntry.thread_id.in_(thread_ids))
            .group_by(ChatEntry.thread_id)
        )
        return {r[0]: int(r[1]) for r in (await self.session.execute(stmt)).all()}

    async def get_session(self, scope: Scope, session_id: int) -> ChatSession | None:
        stmt = select(ChatSession).where(ChatSession.id == session_id, _scoped(ChatSession, scope))
        return await self.session.scalar(stmt)

    def _threads(self, scope: Scope, key_id: int | None, session_id: int | None) -> Select[tuple[ChatThread]]:
        stmt = select(ChatThread).where(_scoped(ChatThread, scope))
        if key_id is not None:
            stmt = stmt.where(ChatThread.key_id == key_id)
        if session_id is not None:
            stmt = stmt.where(ChatThread.session_id == session_id)
        return stmt

    async def thread_candidates(
        self, scope: Scope, key_id: int | None, session_id: int | None, limit: int
    ) -> Sequence[tuple[int, str, str | None]]:
        stmt = (
            select(ChatThread.id, ChatThread.model, ChatThread.title_enc)
            .where(_scoped(ChatThread, scope))
            .order_by(ChatThread.updated_at.desc(), ChatThread.id.desc())
            .limit(limit)
        )
        if key_id is not None:
            stmt = stmt.where(ChatThread.key_id == key_id)
        if session_id is not None:
            stmt = stmt.where(ChatThread.session_id == session_id)
        return [(r[0], r[1], r[2]) for r in (await self.session.execute(stmt)).all()]

    async def threads_page(
        self, scope: Scope, key_id: int | None, session_id: int | None, limit: int, offset: int
    ) -> tuple[Sequence[ChatThread], int]:
        base = self._threads(scope, key_id, session_id)
        total = await self.session.scalar(select(func.count()).select_from(base.subquery()))
        rows = await self.session.scalars(
            base.order_by(ChatThread.updated_at.desc(), ChatThread.id.desc()).limit(limit).offset(offset)
        )
        return list(rows), int(total or 0)

    async def threads_by_ids(self, ids: Sequence[int]) -> Sequence[ChatThread]:
        rows = await self.session.scalars(select(ChatThread).where(ChatThread.id.in_(ids)))
        order = {i: n for n, i in enumerate(ids)}
        return sorted(rows, key=lambda r: order[r.id])

    async def threads_of(self, session_id: int) -> Sequence[ChatThread]:
        stmt = select(ChatThread).where(ChatThread.session_id == session_id).order_by(ChatThread.id)
        return list(await self.session.scalars(stmt))

    async def get_thread(self, scope: Scope, thread_id: int) -> ChatThread | None:
        stmt = select(ChatThread).where(ChatThread.id == thread_id, _scoped(ChatThread, scope))
        return await self.session.scalar(stmt)

    async def entries_of(self, thread_id: int) -> Sequence[ChatEntry]:
        stmt = select(ChatEntry).where(ChatEntry.thread_id == thread_id).order_by(ChatEntry.id)
        return list(await self.session.scalars(stmt))

    # --- deleting ---

    async def delete_session(self, session_id: int) -> None:
        await self.session.execute(delete(ChatSession).where(ChatSession.id == session_id))

    async def purge_org(self, org_id: str) -> int:
        result = await self.session.execute(delete(ChatSession).where(ChatSession.org_id == org_id))
        return int(getattr(result, "rowcount", 0) or 0)

    async def purge_expired(self, now: dt.datetime) -> tuple[int, int]:
        """Entries older than their organisation's retention, then the sessions left empty.
        Returns (entries, sessions) deleted."""
        cutoff = literal(now, DateTime(timezone=True)) - func.make_interval(
            0, 0, 0, ChatRetention.retention_days
        )
        entries = await self.session.execute(
            delete(ChatEntry)
            .where(ChatEntry.org_id == ChatRetention.org_id, ChatEntry.created_at < cutoff)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            delete(ChatThread)
            .where(~select(ChatEntry.id).where(ChatEntry.thread_id == ChatThread.id).exists())
            .execution_options(synchronize_session=False)
        )
        sessions = await self.session.execute(
            delete(ChatSession)
            .where(~select(ChatThread.id).where(ChatThread.session_id == ChatSession.id).exists())
            .execution_options(synchronize_session=False)
        )
        return int(getattr(entries, "rowcount", 0) or 0), int(getattr(sessions, "rowcount", 0) or 0)
