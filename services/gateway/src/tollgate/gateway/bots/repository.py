"""Every SQL query of the Feishu bots: the bots and their pushed events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.gateway.bots.models import (
    ANSWERED,
    CALLING,
    FAILED,
    RECEIVED,
    REPLIED,
    FeishuBot,
    FeishuBotEvent,
)

# What a worker tick has to do, in one read of the open events (the rows the partial index
# ix_feishu_bot_events_due holds): an idle tick ends after it instead of running three claiming
# transactions through the ORM (~15 ms of the gateway's CPU every poll, docs/benchmarks.md)
_PENDING_WORK = text(
    f"SELECT coalesce(bool_or(status = '{RECEIVED}'), false),"
    f" coalesce(bool_or(status = '{CALLING}' AND updated_at < now() - :call_deadline), false),"
    f" coalesce(bool_or(status = '{ANSWERED}' AND next_attempt_at <= now()), false)"
    f" FROM feishu_bot_events WHERE status IN ('{RECEIVED}', '{CALLING}', '{ANSWERED}')"
)


@dataclass(frozen=True, slots=True)
class PendingWork:
    received: bool  # events waiting for their model call
    interrupted: bool  # calls older than the call deadline (their process died)
    replies_due: bool  # answers whose (next) reply attempt is due


class BotRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_live(self, bot_id: int, org_id: str | None = None) -> FeishuBot | None:
        stmt = select(FeishuBot).where(FeishuBot.id == bot_id, FeishuBot.deleted_at.is_(None))
        if org_id is not None:
            stmt = stmt.where(FeishuBot.org_id == org_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_live_by_app(self, org_id: str, app_id: str) -> FeishuBot | None:
        stmt = select(FeishuBot).where(
            FeishuBot.org_id == org_id, FeishuBot.app_id == app_id, FeishuBot.deleted_at.is_(None)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def app_taken(self, org_id: str, app_id: str, except_id: int | None) -> bool:
        stmt = select(FeishuBot.id).where(
            FeishuBot.org_id == org_id, FeishuBot.app_id == app_id, FeishuBot.deleted_at.is_(None)
        )
        if except_id is not None:
            stmt = stmt.where(FeishuBot.id != except_id)
        return (await self.session.execute(stmt.limit(1))).first() is not None

    async def add(self, **values: Any) -> FeishuBot:
        bot = FeishuBot(**values)
        self.session.add(bot)
        await self.session.flush()
        await self.session.refresh(bot)
        return bot

    async def update(self, bot: FeishuBot, **values: Any) -> FeishuBot:
        for key, value in values.items():
            setattr(bot, key, value)
        bot.updated_at = func.now()
        await self.session.flush()
        await self.session.refresh(bot)
        return bot

    async def soft_delete(self, bot_id: int, org_id: str) -> bool:
        stmt = (
            update(FeishuBot)
            .where(FeishuBot.id == bot_id, FeishuBot.org_id == org_id, FeishuBot.deleted_at.is_(None))
            .values(deleted_at=func.now(), updated_at=func.now())
        )
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def list_live(
        self, org_id: str, q: str | None, limit: int, offset: int
    ) -> tuple[list[FeishuBot], int]:
        where = [FeishuBot.org_id == org_id, FeishuBot.deleted_at.is_(None)]
        if q:
            pattern = f"%{q}%"
            where.append(
                or_(
                    FeishuBot.name.ilike(pattern),
                    FeishuBot.app_id.ilike(pattern),
                    FeishuBot.model_id.ilike(pattern),
                )
            )
        total = (
            await self.session.execute(select(func.count()).select_from(FeishuBot).where(*where))
        ).scalar_one()
        stmt = select(FeishuBot).where(*where).order_by(FeishuBot.id).limit(limit).offset(offset)
        return list((await self.session.execute(stmt)).scalars()), int(total)


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, bot_id: int, event_id: str, message_id: str, prompt_encrypted: str) -> int | None:
        """The event's row, or None when this bot already has one for the event id (a duplicate
        push: Feishu retries, or delivers twice)."""
        stmt = (
            insert(FeishuBotEvent)
            .values(
                bot_id=bot_id,
                event_id=event_id,
                message_id=message_id,
                status=RECEIVED,
                prompt_encrypted=prompt_encrypted,
            )
            .on_conflict_do_nothing(constraint="uq_feishu_bot_events_bot_event")
            .returning(FeishuBotEvent.id)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def pending_work(self, call_deadline: timedelta) -> PendingWork:
        received, interrupted, replies_due = (
            await self.session.execute(_PENDING_WORK, {"call_deadline": call_deadline})
        ).one()
        return PendingWork(bool(received), bool(interrupted), bool(replies_due))

    async def claim_received(self, limit: int) -> list[FeishuBotEvent]:
        """Received events moved to `calling` in this transaction: once committed, no worker (of any
        replica) calls the model for them again."""
        stmt = (
            select(FeishuBotEvent)
            .where(FeishuBotEvent.status == RECEIVED)
            .order_by(FeishuBotEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list((await self.session.execute(stmt)).scalars())
        for row in rows:
            row.status = CALLING
            row.updated_at = func.now()
        await self.session.flush()
        return rows

    async def claim_replies(self, limit: int, lease: timedelta) -> list[FeishuBotEvent]:
        """Answered events whose reply is due, leased for `lease` (another replica leaves them)."""
        stmt = (
            select(FeishuBotEvent)
            .where(FeishuBotEvent.status == ANSWERED, FeishuBotEvent.next_attempt_at <= func.now())
            .order_by(FeishuBotEvent.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list((await self.session.execute(stmt)).scalars())
        for row in rows:
            row.reply_attempts += 1
            row.next_attempt_at = func.now() + lease
            row.updated_at = func.now()
        await self.session.flush()
        return rows

    async def answered(
        self, event_pk: int, answer_encrypted: str, lease: timedelta, error: str | None
    ) -> None:
        await self.session.execute(
            update(FeishuBotEvent)
            .where(FeishuBotEvent.id == event_pk)
            .values(
                status=ANSWERED,
                answer_encrypted=answer_encrypted,
                prompt_encrypted=None,
                error=error[:200] if error else None,
                reply_attempts=1,
                next_attempt_at=func.now() + lease,
                updated_at=func.now(),
            )
        )

    async def replied(self, event_pk: int) -> None:
        await self.session.execute(
            update(FeishuBotEvent)
            .where(FeishuBotEvent.id == event_pk)
            .values(status=REPLIED, answer_encrypted=None, updated_at=func.now())
        )

    async def reply_failed(self, event_pk: int, error: str, retry_in: timedelta | None) -> None:
        """Try again after `retry_in`, or give up (None): the answer is dropped, never kept."""
        values: dict[str, Any] = {"error": error[:200], "updated_at": func.now()}
        if retry_in is None:
            values.update(status=FAILED, answer_encrypted=None)
        else:
            values["next_attempt_at"] = func.now() + retry_in
        await self.session.execute(
            update(FeishuBotEvent).where(FeishuBotEvent.id == event_pk).values(**values)
        )

    async def interrupted_calls(self, older_than: timedelta) -> list[FeishuBotEvent]:
        """Events left in `calling` by a process that died during the model call."""
        stmt = (
            select(FeishuBotEvent)
            .where(FeishuBotEvent.status == CALLING, FeishuBotEvent.updated_at < func.now() - older_than)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def forget_before(self, age: timedelta) -> int:
        """Drops finished events older than `age` (their ids are then no longer de-duplicated)."""
        stmt = delete(FeishuBotEvent).where(
            FeishuBotEvent.status.in_((REPLIED, FAILED)), FeishuBotEvent.created_at < func.now() - age
        )
        return int((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def status_of(self, bot_id: int, event_id: str) -> str | None:
        stmt = select(FeishuBotEvent.status).where(
            FeishuBotEvent.bot_id == bot_id, FeishuBotEvent.event_id == event_id
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()
