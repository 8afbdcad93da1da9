"""Chat records (docs/chat-records.md): hands each recorded chat request and its answer to Kafka
(topic chat.records.v1), off the answer's path and never through a database.

Only organisations whose principal says `chat_recording` is "metadata" or "full" are recorded; for
the others the completions path never calls `record` (one attribute test). `record` only queues (a
bounded queue: a full one drops the record and counts it); one task builds the ChatRecorded message
and sends it with the idempotent producer. Unlike usage facts, records are not money: while Kafka
is down they are dropped and counted (`gateway_chat_records_dropped_total`), never spooled, so no
conversation content rests in plaintext in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter

from tollgate.common.auth_client import Principal
from tollgate.common.kafka import EVENT_TYPE_HEADER, TOPIC_CHAT_RECORDS
from tollgate.common.telemetry import kafka_headers_from_context, kafka_publish_span
from tollgate.common.waits import timed
from tollgate.contracts.v1 import events_pb2

log = logging.getLogger(__name__)

SESSION_HEADER = "x-session-id"
THREAD_HEADER = "x-thread-id"
MAX_ID_CHARS = 128  # longer session / thread ids are cut (they are labels, not content)


@dataclass(slots=True)
class PendingRecord:
    """What `record` captured on the request's path; serialized later by the sender task."""

    request_id: str
    principal: Principal
    session_id: str
    thread_id: str
    model: str
    stream: bool
    status: str
    tokens_in: int
    tokens_out: int
    messages: Any
    answer: str
    endpoint: str
    created_at_unix_ms: int
    headers: list[tuple[str, bytes]]


def _text(content: Any) -> str:
    """A message's text; parts that are not text (images, documents) leave a marker, not their bytes."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    out = []
    for part in content:
        if isinstance(part, dict):
            kind = part.get("type")
            out.append(str(part.get("text", "")) if kind == "text" else f"[{kind}]")
    return "\n".join(out)


def text_messages(messages: Any) -> list[dict[str, str]]:
    """Role and text of each message: what a record keeps of the request."""
    if not isinstance(messages, list):
        return []
    return [
        {"role": str(m.get("role", "")), "content": _text(m.get("content"))}
        for m in messages
        if isinstance(m, dict)
    ]


def to_event(p: PendingRecord) -> events_pb2.ChatRecorded:
    full = p.principal.chat_recording == "full"
    return events_pb2.ChatRecorded(
        event_id=p.request_id,
        org_id=p.principal.org_id,
        key_id=p.principal.key_id,
        user_id=p.principal.user_id,
        session_id=p.session_id[:MAX_ID_CHARS],
        thread_id=p.thread_id[:MAX_ID_CHARS],
        mode=p.principal.chat_recording,
        retention_days=p.principal.chat_retention_days,
        model=p.model,
        stream=p.stream,
        status=p.status,
        tokens_in=p.tokens_in,
        tokens_out=p.tokens_out,
        created_at_unix_ms=p.created_at_unix_ms,
        messages_json=orjson.dumps(text_messages(p.messages)).decode() if full else "",
        answer=p.answer if full else "",
        endpoint=p.endpoint,
    )


class RecordMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "gateway_chat_records_sent_total", "Chat records the brokers acknowledged", registry=registry
        )
        self.dropped = Counter(
            "gateway_chat_records_dropped_total",
            "Chat records not sent: queue full, Kafka unavailable or the send failed",
            ["reason"],
            registry=registry,
        )


class ChatRecorder:
    def __init__(
        self,
        producer_factory: Callable[[], Any],
        metrics: RecordMetrics,
        *,
        topic: str = TOPIC_CHAT_RECORDS,
        max_queued: int = 10_000,
        send_timeout_s: float = 3.0,
        retry_start_s: float = 5.0,
    ) -> None:
        self._factory = producer_factory
        self._metrics = metrics
        self._topic = topic
        self._timeout = send_timeout_s
        self._retry_start = retry_start_s
        self._queue: asyncio.Queue[PendingRecord] = asyncio.Queue(max_queued)
        self._producer: Any = None
        self._tracer = trace.get_tracer("tollgate.gateway.records")

    def record(self, pending: PendingRecord) -> None:
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._metrics.dropped.labels("queue_full").inc()

    async def run(self) -> None:
        while True:
            pending = await self._queue.get()
            if self._producer is None and not await self._start():
                self._metrics.dropped.labels("kafka_unavailable").inc()
                continue
            await self._send(pending)

    async def _start(self) -> bool:
        producer = self._factory()
        try:
            await timed(producer.start(), self._timeout * 2)
        except Exception:
            log.warning("chat records: kafka producer could not start; records are dropped meanwhile")
            with contextlib.suppress(Exception):
                await producer.stop()
            await asyncio.sleep(self._retry_start)
            return False
        self._producer = producer
        return True

    async def _send(self, pending: PendingRecord) -> None:
        value = to_event(pending).SerializeToString()
        try:
            with kafka_publish_span(self._tracer, self._topic, pending.headers) as headers:
                future = await timed(
                    self._producer.send(
                        self._topic, value, key=pending.principal.org_id.encode(), headers=headers
                    ),
                    self._timeout,
                )
        except Exception:
            log.warning("chat record %s not sent", pending.request_id)
            self._metrics.dropped.labels("send_failed").inc()
            return
        future.add_done_callback(self._on_ack)

    def _on_ack(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._metrics.sent.inc()
        else:
            self._metrics.dropped.labels("send_failed").inc()

    async def close(self) -> None:
        """Sends what is queued (bounded by the send timeout each), then stops the producer."""
        while not self._queue.empty() and self._producer is not None:
            await self._send(self._queue.get_nowait())
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.flush()
                await self._producer.stop()


def pending_record(
    *,
    request_id: str,
    principal: Principal,
    session_id: str,
    thread_id: str,
    model: str,
    stream: bool,
    status: str,
    tokens_in: int,
    tokens_out: int,
    messages: Any,
    answer: str,
    endpoint: str,
) -> PendingRecord:
    return PendingRecord(
        request_id,
        principal,
        session_id,
        thread_id,
        model,
        stream,
        status,
        tokens_in,
        tokens_out,
        messages,
        answer,
        endpoint,
        int(time.time() * 1000),
        [(EVENT_TYPE_HEADER, b"ChatRecorded"), *kafka_headers_from_context()],
    )
