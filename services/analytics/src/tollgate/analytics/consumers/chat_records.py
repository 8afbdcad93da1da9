"""Consumer of `chat.records.v1` (group analytics-chat-records): decode, encrypt (off the event
loop), store in one transaction, then commit offsets. Entries are unique on the event id (the
gateway's request id), so a replay after a crash stores nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from google.protobuf.message import DecodeError
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.records.metrics import ChatRecordMetrics
from tollgate.analytics.records.repository import NewEntry
from tollgate.analytics.records.service import ChatRecordService, prepare
from tollgate.common.kafka import (
    commit_within,
    consume_with_renewal,
    renewed_consumer,
    start_when_available,
)
from tollgate.common.stall_watch import StallWatch
from tollgate.common.telemetry import context_from_kafka_headers
from tollgate.contracts.v1 import events_pb2

log = logging.getLogger(__name__)


class ChatRecordConsumer:
    def __init__(
        self,
        consumer: Any,
        sessions: async_sessionmaker[AsyncSession],
        service: ChatRecordService,
        metrics: ChatRecordMetrics,
        *,
        max_records: int = 200,
        timeout_ms: int = 500,
        max_backoff_s: float = 5.0,
        renew: Callable[[], Any] | None = None,
        watch: StallWatch | None = None,
    ) -> None:
        self._consumer = consumer
        self._renew = renew
        self._watch = watch or StallWatch.off()
        self._sessions = sessions
        self._service = service
        self._metrics = metrics
        self._max_records = max_records
        self._timeout_ms = timeout_ms
        self._max_backoff_s = max_backoff_s
        self._tracer = trace.get_tracer("tollgate.analytics.chat_records")

    async def run(self) -> None:
        try:
            await consume_with_renewal(
                self._consume,
                self._replace if self._renew is not None else None,
                pause_s=self._max_backoff_s,
                renewed=self._metrics.consumer_renewals.inc,
                watch=self._watch.waiter,
            )
        finally:
            with contextlib.suppress(Exception):
                await self._consumer.stop()

    async def _replace(self) -> None:
        assert self._renew is not None
        self._consumer = await renewed_consumer(self._consumer, self._renew)

    async def _consume(self) -> None:
        await start_when_available(
            self._consumer, "chat record consumer", first_backoff_s=0.5, max_backoff_s=self._max_backoff_s
        )
        while True:
            await self.poll_once()

    async def poll_once(self) -> int:
        batches = await self._consumer.getmany(timeout_ms=self._timeout_ms, max_records=self._max_records)
        records = [r for recs in batches.values() for r in recs]
        if not records:
            return 0
        with self._watch.busy():
            return await self._process(batches, records)

    async def _process(self, batches: Any, records: list[Any]) -> int:
        started = time.perf_counter()
        with self._tracer.start_as_current_span(
            f"{records[0].topic} process",
            context=context_from_kafka_headers(records[0].headers),
            kind=SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.batch.message_count": len(records)},
        ):
            entries = await asyncio.to_thread(self._prepare, [r.value for r in records])
            stored = await self._store(entries)
        await self._commit(batches)
        self._metrics.stored.inc(stored)
        self._metrics.duplicate.inc(len(entries) - stored)
        self._metrics.skipped.inc(len(records) - len(entries))
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        return len(records)

    def _prepare(self, values: Sequence[bytes | None]) -> list[NewEntry]:
        out = []
        for value in values:
            try:
                entry = prepare(self._service.box, events_pb2.ChatRecorded.FromString(value or b""))
            except (DecodeError, ValueError):
                entry = None
            if entry is not None:
                out.append(entry)
        return out

    async def _store(self, entries: Sequence[NewEntry]) -> int:
        """Retries until the transaction commits: a batch is never skipped."""
        if not entries:
            return 0
        backoff = 0.2
        while True:
            try:
                async with self._sessions() as session, session.begin():
                    return await self._service.store(session, entries)
            except (SQLAlchemyError, OSError) as exc:
                self._metrics.store_failures.inc()
                log.warning("storing chat records failed, retrying", extra={"error": repr(exc)})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _commit(self, batches: Mapping[TopicPartition, Sequence[Any]]) -> None:
        offsets = {tp: recs[-1].offset + 1 for tp, recs in batches.items() if recs}
        try:
            await commit_within(self._consumer, offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("chat records offset commit refused after rebalance", extra={"error": repr(exc)})


class RetentionPurger:
    """Deletes records past their organisation's retention every `interval_s` (every replica may
    run it: the deletes are idempotent)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        service: ChatRecordService,
        metrics: ChatRecordMetrics,
        interval_s: float,
    ) -> None:
        self._sessions = sessions
        self._service = service
        self._metrics = metrics
        self._interval = interval_s

    async def run(self) -> None:
        while True:
            try:
                async with self._sessions() as session, session.begin():
                    purged = await self._service.purge_expired(session)
                self._metrics.purged_entries.inc(purged.entries)
                if purged.entries:
                    log.info("chat records past retention deleted", extra={"entries": purged.entries})
            except (SQLAlchemyError, OSError) as exc:
                log.warning("chat record retention purge failed", extra={"error": repr(exc)})
            await asyncio.sleep(self._interval)
