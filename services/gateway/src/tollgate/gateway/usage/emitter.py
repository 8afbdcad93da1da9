"""Publishes usage events without ever blocking a response on Kafka.

`emit` only queues. A sender hands events to the idempotent producer; an event whose send fails
or times out goes to the Redis spool, and while Kafka is known down events go straight there.
A drainer republishes spooled events once Kafka answers again and deletes each only after the
broker acknowledged it. A crash between ack and delete re-sends an event; consumers dedupe on
the event id, so it is still counted once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Tracer

from tollgate.common.kafka import TOPIC_USAGE
from tollgate.common.telemetry import kafka_publish_span
from tollgate.common.waits import timed
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.usage.events import OutgoingEvent
from tollgate.gateway.usage.spool import Spool

log = logging.getLogger(__name__)

# aiokafka's AIOKafkaProducer, or a fake with start/stop/send/partitions_for in tests.
ProducerFactory = Callable[[], Any]


class UsageEmitter:
    def __init__(
        self,
        producer_factory: ProducerFactory,
        spool: Spool,
        metrics: GatewayMetrics,
        *,
        topic: str = TOPIC_USAGE,
        send_timeout_s: float = 3.0,
        drain_interval_s: float = 1.0,
        drain_batch: int = 500,
        tracer: Tracer | None = None,
    ) -> None:
        self._factory = producer_factory
        self._spool = spool
        self._metrics = metrics
        self._topic = topic
        self._timeout = send_timeout_s
        self._drain_interval = drain_interval_s
        self._drain_batch = drain_batch
        self._tracer = tracer or trace.get_tracer("tollgate.gateway.usage")
        self._queue: asyncio.Queue[OutgoingEvent] = asyncio.Queue()
        self._producer: Any = None
        self._kafka_up = False
        self._unacked: set[asyncio.Future[Any]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def kafka_up(self) -> bool:
        return self._kafka_up

    def emit(self, event: OutgoingEvent) -> None:
        self._queue.put_nowait(event)

    async def run(self) -> None:
        await asyncio.gather(self._send_loop(), self._drain_loop())

    async def close(self) -> None:
        """Flushes what is queued or in flight, to Kafka or to the spool."""
        while not self._queue.empty():
            await self._dispatch(self._queue.get_nowait())
        if self._unacked:
            await asyncio.wait(list(self._unacked), timeout=self._timeout * 2)
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()  # fails what is still unacked: callbacks spool it
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- sending ---------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._dispatch(event)
            except asyncio.CancelledError:
                # Maybe handed over already; a duplicate is harmless (deduped), a loss is not.
                self._queue.put_nowait(event)
                raise

    async def _dispatch(self, event: OutgoingEvent) -> None:
        if not self._kafka_up or self._producer is None:
            await self._to_spool(event)
            return
        try:
            # the publish span joins the request's trace (its context rides in the event's headers)
            with kafka_publish_span(self._tracer, self._topic, event.headers) as headers:
                future = await timed(
                    self._producer.send(self._topic, event.value, key=event.key, headers=headers),
                    self._timeout,
                )
        except Exception:
            self._mark_down("send failed")
            await self._to_spool(event)
            return
        self._unacked.add(future)
        future.add_done_callback(lambda f: self._on_ack(event, f))

    def _on_ack(self, event: OutgoingEvent, future: asyncio.Future[Any]) -> None:
        self._unacked.discard(future)
        if not future.cancelled() and future.exception() is None:
            self._metrics.usage_sent.inc()
            return
        self._mark_down("delivery failed")
        task = asyncio.get_running_loop().create_task(self._to_spool(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _to_spool(self, event: OutgoingEvent) -> None:
        for attempt in range(3):
            try:
                await self._spool.add(event)
                self._metrics.usage_spooled.inc()
                return
            except Exception:
                log.warning("spooling usage event %s failed (attempt %d)", event.event_id, attempt + 1)
                await asyncio.sleep(0.2 * (attempt + 1))
        # Last resort: the whole record in the log, so it can be replayed by hand.
        self._metrics.usage_lost.inc()
        log.error(
            "usage event neither sent nor spooled",
            extra={
                "event_id": event.event_id,
                "record_b64": base64.b64encode(event.value).decode(),
                "key": event.key.decode(errors="replace"),
            },
        )

    def _mark_down(self, why: str) -> None:
        if self._kafka_up:
            log.warning("kafka unavailable (%s); spooling usage events", why)
        self._kafka_up = False

    # -- recovery --------------------------------------------------------------------------------

    async def _drain_loop(self) -> None:
        while True:
            try:
                await self._ensure_producer()
                if self._producer is not None:
                    while await self.drain_once() >= self._drain_batch:
                        pass  # a full batch: more may be waiting
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("usage spool drain failed", exc_info=True)
            await asyncio.sleep(self._drain_interval)

    async def _ensure_producer(self) -> None:
        if self._producer is not None:
            return
        producer = self._factory()
        try:
            await timed(producer.start(), self._timeout * 2)
        except Exception:
            log.warning("kafka producer could not start; usage events go to the spool")
            with contextlib.suppress(Exception):
                await producer.stop()
            return
        self._producer = producer
        self._kafka_up = True

    async def drain_once(self) -> int:
        """Republishes one batch of spooled events; returns how many were acked and deleted."""
        entries = await self._spool.read(self._drain_batch)
        if not entries:
            if not self._kafka_up:
                await timed(self._producer.partitions_for(self._topic), self._timeout)
                self._kafka_up = True
                log.info("kafka answers again")
            return 0
        acked: list[bytes] = []
        failed = False
        try:
            pending = []
            for entry_id, event in entries:
                future = await timed(
                    self._producer.send(self._topic, event.value, key=event.key, headers=event.headers),
                    self._timeout,
                )
                pending.append((entry_id, future))
            for entry_id, future in pending:
                try:
                    await timed(asyncio.shield(future), self._timeout)
                    acked.append(entry_id)
                except Exception:
                    failed = True
        except Exception:
            failed = True
        finally:
            # Only what the broker acknowledged leaves the spool.
            await self._spool.delete(acked)
            self._metrics.usage_drained.inc(len(acked))
        if failed:
            self._mark_down("drain failed")
        elif not self._kafka_up:
            self._kafka_up = True
            log.info("kafka answers again; spool drained")
        return len(acked)
