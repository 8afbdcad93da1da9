"""What the alert tests receive with: a real SMTP server (aiosmtpd), a real HTTP webhook receiver,
a Kafka reader of billing.alerts.v1, and record_alerts run against the stack's billing database."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tollgate.billing.alerts.schemas import AlertFact
from tollgate.billing.alerts.service import record_alerts
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.kafka import TOPIC_BILLING_ALERTS
from tollgate.common.telemetry import header_value
from tollgate.contracts.v1 import events_pb2
from tollgate.devstack import usage_events
from tollgate.devstack.config import StackConfig


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self._messages.append(
                (
                    list(envelope.rcpt_tos),
                    message_from_bytes(envelope.original_content or b"", policy=policy.default),
                )
            )
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        with self._lock:
            return [m for rcpt, m in self._messages if address in rcpt]


def start_smtp(config: StackConfig) -> tuple[Controller, Inbox]:
    """On the port the test profile's billing sends alert e-mail to."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=int(config.alert_vars()["BILLING_SMTP_PORT"]))
    controller.start()
    return controller, inbox


@dataclass
class Hook:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver: /ok answers 204, /fail 500, /hang waits for `release` then answers 200."""

    server: ThreadingHTTPServer
    hooks: list[Hook] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self, path: str) -> list[Hook]:
        with self.lock:
            return [h for h in self.hooks if h.path == path]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def start_receiver() -> Receiver:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = holder[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.hooks.append(Hook(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path == "/hang":
                receiver.release.wait(60)
            status = {"/ok": 204, "/fail": 500, "/hang": 200}.get(self.path, 404)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    holder.append(receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


@dataclass(frozen=True)
class Produced:
    event: events_pb2.CostAlert
    key: bytes
    headers: list[tuple[str, bytes]]

    @property
    def event_type(self) -> str | None:
        return header_value(self.headers, "event-type")


def read_cost_alerts(config: StackConfig, org_id: str, want: int, timeout_s: float = 60) -> list[Produced]:
    """CostAlerts keyed by `org_id`, from the start of billing.alerts.v1, until `want` distinct ids."""

    async def read() -> list[Produced]:
        consumer = AIOKafkaConsumer(
            TOPIC_BILLING_ALERTS,
            bootstrap_servers=config.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[Produced] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while len({p.event.alert_id for p in found}) < want and loop.time() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for r in records:
                        if r.key == org_id.encode():
                            event = events_pb2.CostAlert.FromString(r.value or b"")
                            found.append(Produced(event, r.key, list(r.headers or ())))
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


def publish(config: StackConfig, events: Sequence[events_pb2.UsageRecorded]) -> None:
    """To usage.v1 keyed by org, as the gateway does; returns once every event is acknowledged."""
    usage_events.publish(config.kafka_bootstrap, events, "alerts-test")


def record_concurrently(config: StackConfig, facts: Sequence[AlertFact], copies: int) -> list[list[str]]:
    """`copies` transactions at once, each recording the same facts, as concurrent settlements would."""

    async def run() -> list[list[str]]:
        engine = make_engine(config.database_url("billing"), pool_size=copies)
        sessions = make_sessionmaker(engine)

        async def one() -> list[str]:
            async with sessions.begin() as session:
                return await record_alerts(session, facts)

        try:
            return list(await asyncio.gather(*(one() for _ in range(copies))))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def alerts_of(http: httpx.Client) -> list[dict[str, Any]]:
    resp = http.get("/cost/alerts", params={"limit": 100})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]  # type: ignore[no-any-return]
