"""Answers recorded Feishu events in the background, durably, in every gateway process (replicas
share the work through row locks).

An event goes received → calling → answered → replied:
- `calling` is committed before the model is called, so the model (and billing) is called at most
  once per event, whatever crashes. A process that dies during the call leaves the event in
  `calling`; after the call's deadline another tick turns it into an apology ("interrupted"),
  never a second call: an answer lost that way is not billed twice.
- `answered` keeps the answer (encrypted) until Feishu took the reply; replies are retried with
  backoff, each with the event id as Feishu's `uuid`, so a retry after an unclear failure does not
  reply twice. After the last attempt the answer is dropped (`failed`).
- Finished events are remembered (their ids de-duplicated) for the retention period, then deleted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.secretbox import SecretBox
from tollgate.common.waits import wait_event
from tollgate.gateway.bots.clients import FeishuClient, FeishuError, ModelCaller
from tollgate.gateway.bots.models import FeishuBot
from tollgate.gateway.bots.repository import BotRepository, EventRepository

log = logging.getLogger(__name__)

INTERRUPTED = "Sorry, I was interrupted while answering: please ask again."
BATCH = 16
CONCURRENT_CALLS = 8  # model calls in flight per process; further events wait in `received`
FORGET_EVERY_S = 600.0


class BotMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "gateway_feishu_events_total",
            "Feishu pushes to bot endpoints by outcome (accepted, duplicate, ignored, challenge, refused)",
            ["outcome"],
            registry=registry,
        )
        self.model_calls = Counter(
            "gateway_feishu_model_calls_total",
            "Bot model calls through the gateway by outcome (ok, or the gateway's error code class)",
            ["outcome"],
            registry=registry,
        )
        self.replies = Counter(
            "gateway_feishu_replies_total",
            "Replies sent to Feishu by outcome (sent, retry, failed)",
            ["outcome"],
            registry=registry,
        )


@dataclass(frozen=True)
class WorkerTiming:
    poll_s: float
    call_deadline_s: float  # after this long in `calling`, an event's call is taken as interrupted
    reply_lease_s: float
    retention_s: float
    reply_max_attempts: int


@dataclass(frozen=True)
class _Secrets:
    app_id: str
    app_secret: str
    api_key: str
    model: str


class BotWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        feishu: FeishuClient,
        model: ModelCaller,
        metrics: BotMetrics,
        timing: WorkerTiming,
    ) -> None:
        self.sessions = sessions
        self.box = box
        self.feishu = feishu
        self.model = model
        self.metrics = metrics
        self.timing = timing
        self._wake = asyncio.Event()
        self._calls: set[asyncio.Task[None]] = set()
        self._forgotten_at = 0.0

    def kick(self) -> None:
        """A new event was committed: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            await wait_event(self._wake, self.timing.poll_s)
            self._wake.clear()
            try:
                await self.tick()
            except Exception:  # a database or network blip: logged, and the next tick tries again
                log.exception("feishu bot worker tick failed")

    async def tick(self) -> None:
        # one read says what there is to do; most ticks find nothing (another replica's events, and
        # retries, are only found by polling, so every replica polls)
        async with self.sessions() as session:
            work = await EventRepository(session).pending_work(timedelta(seconds=self.timing.call_deadline_s))
        if work.interrupted:
            await self._recover_interrupted()
        free = min(BATCH, CONCURRENT_CALLS - len(self._calls))
        if free > 0 and work.received:
            async with self.sessions() as session, session.begin():
                claimed = [
                    (e.id, e.bot_id, e.event_id, e.message_id, e.prompt_encrypted)
                    for e in await EventRepository(session).claim_received(free)
                ]
            for args in claimed:  # in the background: a slow model does not hold up other bots
                task = asyncio.create_task(self._answer_logged(*args))
                self._calls.add(task)
                task.add_done_callback(self._call_done)
        if work.replies_due:
            await self._send_due_replies()
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._forgotten_at > FORGET_EVERY_S:
            self._forgotten_at = loop_now
            async with self.sessions() as session, session.begin():
                await EventRepository(session).forget_before(timedelta(seconds=self.timing.retention_s))

    def _call_done(self, task: asyncio.Task[None]) -> None:
        self._calls.discard(task)
        self.kick()  # a slot is free: events may be waiting

    async def _answer_logged(
        self, pk: int, bot_id: int, event_id: str, message_id: str, prompt_encrypted: str | None
    ) -> None:
        try:
            await self._answer(pk, bot_id, event_id, message_id, prompt_encrypted)
        except Exception:  # the event stays where it got to; interrupted calls are recovered
            log.exception("feishu bot answer failed", extra={"event_id": event_id})

    async def close(self) -> None:
        """Shutdown: calls in flight are cancelled; their events become "interrupted" apologies."""
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)

    def _secrets(self, bot: FeishuBot) -> _Secrets:
        return _Secrets(
            bot.app_id,
            self.box.decrypt(bot.app_secret_encrypted),
            self.box.decrypt(bot.api_key_encrypted),
            bot.model_id,
        )

    async def _bot(self, bot_id: int) -> _Secrets | None:
        async with self.sessions() as session:
            bot = await BotRepository(session).get_live(bot_id)
            return self._secrets(bot) if bot is not None else None

    async def _answer(
        self, pk: int, bot_id: int, event_id: str, message_id: str, prompt_encrypted: str | None
    ) -> None:
        lease = timedelta(seconds=self.timing.reply_lease_s)
        bot = await self._bot(bot_id)
        if bot is None or prompt_encrypted is None:  # the bot was deleted since: nothing to answer
            async with self.sessions() as session, session.begin():
                await EventRepository(session).reply_failed(pk, "bot_deleted", None)
            return
        answer = await self.model.ask(bot.api_key, bot.model, self.box.decrypt(prompt_encrypted))
        self.metrics.model_calls.labels("ok" if answer.error is None else "error").inc()
        if answer.error is not None:
            log.warning(
                "feishu bot model call failed",
                extra={"bot_id": bot_id, "event_id": event_id, "error": answer.error},
            )
        async with self.sessions() as session, session.begin():
            await EventRepository(session).answered(pk, self.box.encrypt(answer.text), lease, answer.error)
        await self._reply(pk, bot, event_id, message_id, answer.text, attempt=1)

    async def _reply(
        self, pk: int, bot: _Secrets, event_id: str, message_id: str, text: str, attempt: int
    ) -> None:
        try:
            await self.feishu.reply_text(bot.app_id, bot.app_secret, message_id, text, uuid=event_id)
        except FeishuError as exc:
            last = attempt >= self.timing.reply_max_attempts
            retry_in = None if last else timedelta(seconds=min(2.0**attempt, 300.0))
            self.metrics.replies.labels("failed" if last else "retry").inc()
            log.warning(
                "feishu reply failed", extra={"event_id": event_id, "attempt": attempt, "error": str(exc)}
            )
            async with self.sessions() as session, session.begin():
                await EventRepository(session).reply_failed(pk, str(exc), retry_in)
            return
        self.metrics.replies.labels("sent").inc()
        async with self.sessions() as session, session.begin():
            await EventRepository(session).replied(pk)

    async def _send_due_replies(self) -> None:
        lease = timedelta(seconds=self.timing.reply_lease_s)
        async with self.sessions() as session, session.begin():
            due = [
                (e.id, e.bot_id, e.event_id, e.message_id, e.answer_encrypted, e.reply_attempts)
                for e in await EventRepository(session).claim_replies(BATCH, lease)
            ]
        for pk, bot_id, event_id, message_id, answer_encrypted, attempts in due:
            bot = await self._bot(bot_id)
            if bot is None or answer_encrypted is None:
                async with self.sessions() as session, session.begin():
                    await EventRepository(session).reply_failed(pk, "bot_deleted", None)
                continue
            await self._reply(pk, bot, event_id, message_id, self.box.decrypt(answer_encrypted), attempts)

    async def _recover_interrupted(self) -> None:
        deadline = timedelta(seconds=self.timing.call_deadline_s)
        lease = timedelta(seconds=0)
        async with self.sessions() as session, session.begin():
            repo = EventRepository(session)
            for event in await repo.interrupted_calls(deadline):
                log.warning("feishu bot call interrupted", extra={"event_id": event.event_id})
                self.metrics.model_calls.labels("interrupted").inc()
                await repo.answered(event.id, self.box.encrypt(INTERRUPTED), lease, "interrupted")
