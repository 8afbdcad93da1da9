"""The Feishu bot worker's poll on a scratch PostgreSQL (scratch_db.py): one read says what a tick
has to do, and a tick with nothing to do stops after it (every gateway replica polls every couple
of seconds, so an idle tick's cost is paid all day)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from scratch_db import scratch_database
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.gateway.bots import models
from tollgate.gateway.bots.clients import FeishuClient, ModelCaller
from tollgate.gateway.bots.models import FeishuBot, FeishuBotEvent
from tollgate.gateway.bots.repository import EventRepository, PendingWork
from tollgate.gateway.bots.worker import INTERRUPTED, BotMetrics, BotWorker, WorkerTiming
from tollgate.gateway.catalog.secrets import SecretBox

DEADLINE = timedelta(seconds=60)
RECEIVED, CALLING, ANSWERED = models.RECEIVED, models.CALLING, models.ANSWERED
REPLIED, FAILED = models.REPLIED, models.FAILED
NOTHING = PendingWork(received=False, interrupted=False, replies_due=False)


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with scratch_database("scratch_gateway_ticks") as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=2)
    async with engine.begin() as conn:  # each test starts from no events
        await conn.execute(FeishuBotEvent.__table__.delete())
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


async def add_event(
    sessions: async_sessionmaker[AsyncSession], status: str, *, age_s: float = 0, due_in_s: float = 0
) -> int:
    """An event in `status`, last updated `age_s` ago, its next reply attempt `due_in_s` from now."""
    async with sessions() as session, session.begin():
        bot = (await session.execute(select(FeishuBot).limit(1))).scalar_one_or_none()
        if bot is None:
            bot = FeishuBot(
                org_id="org-ticks",
                name="ticks",
                app_id="cli_ticks",
                model_id="sim-model",
                api_key_encrypted="x",
                api_key_hint="tg_x",
                app_secret_encrypted="x",
            )
            session.add(bot)
            await session.flush()
        row = FeishuBotEvent(bot_id=bot.id, event_id=uuid.uuid4().hex, message_id="om_1", status=status)
        session.add(row)
        await session.flush()
        await session.execute(
            update(FeishuBotEvent)
            .where(FeishuBotEvent.id == row.id)
            .values(
                updated_at=func.now() - timedelta(seconds=age_s),
                next_attempt_at=func.now() + timedelta(seconds=due_in_s),
            )
        )
        return row.id


async def pending(sessions: async_sessionmaker[AsyncSession]) -> PendingWork:
    async with sessions() as session:
        return await EventRepository(session).pending_work(DEADLINE)


async def test_the_pending_work_read_names_what_a_tick_has_to_do(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert await pending(sessions) == NOTHING
    # finished events, a call still within its deadline and a reply not yet due are nothing to do
    await add_event(sessions, REPLIED, age_s=3600)
    await add_event(sessions, FAILED, age_s=3600)
    await add_event(sessions, CALLING, age_s=5)
    await add_event(sessions, ANSWERED, due_in_s=30)
    assert await pending(sessions) == NOTHING

    await add_event(sessions, ANSWERED, due_in_s=-1)
    assert await pending(sessions) == PendingWork(received=False, interrupted=False, replies_due=True)
    await add_event(sessions, CALLING, age_s=120)
    assert await pending(sessions) == PendingWork(received=False, interrupted=True, replies_due=True)
    await add_event(sessions, RECEIVED)
    assert await pending(sessions) == PendingWork(received=True, interrupted=True, replies_due=True)


def worker(sessions: async_sessionmaker[AsyncSession], http: httpx.AsyncClient) -> BotWorker:
    return BotWorker(
        sessions,
        SecretBox("ticks-secret-" + "k" * 32),
        FeishuClient(http, "http://127.0.0.1:9"),  # never reached: these ticks send no reply
        ModelCaller(http, "http://127.0.0.1:9", 64, 1.0),
        BotMetrics(CollectorRegistry()),
        WorkerTiming(
            poll_s=2.0,
            call_deadline_s=DEADLINE.total_seconds(),
            reply_lease_s=10.0,
            retention_s=86_400,
            reply_max_attempts=3,
        ),
    )


def count_statements(engine: AsyncEngine) -> list[str]:
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT", "DELETE")):
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    return statements


async def test_an_idle_tick_makes_one_read_and_a_tick_with_an_interrupted_call_recovers_it(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with httpx.AsyncClient() as http:
        bots = worker(sessions, http)
        await bots.tick()  # the first tick also forgets old finished events (every 600 s)
        statements = count_statements(engine)
        await add_event(sessions, REPLIED, age_s=3600)
        await add_event(sessions, CALLING, age_s=5)
        await add_event(sessions, ANSWERED, due_in_s=30)
        statements.clear()
        await bots.tick()
        assert len(statements) == 1 and "bool_or" in statements[0], statements

        stuck = await add_event(sessions, CALLING, age_s=120)
        statements.clear()
        await bots.tick()
        assert len(statements) > 1  # the recovery ran
        async with sessions() as session:
            row = await session.get(FeishuBotEvent, stuck)
            assert row is not None and row.status == ANSWERED and row.error == "interrupted"
            assert bots.box.decrypt(row.answer_encrypted or "") == INTERRUPTED
