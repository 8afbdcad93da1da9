"""The three ways an alert leaves billing. Each `send` makes one attempt and reports its result;
the dispatcher decides about retries. Nothing here logs a secret, a signature or a message body."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
from aiokafka.errors import KafkaError
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts import destinations, payload, signing
from tollgate.billing.alerts.models import Alert, WebhookEndpoint
from tollgate.billing.alerts.repository import ClaimedDelivery
from tollgate.billing.alerts.secretbox import SecretBox
from tollgate.common.kafka import EVENT_TYPE_HEADER
from tollgate.common.telemetry import kafka_headers_from_context
from tollgate.common.waits import timed

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("tollgate.billing.alerts")
_MAX_ERROR = 500


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    # no point retrying (the endpoint was deleted, the server refused the address for good)
    permanent: bool = False


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:_MAX_ERROR]


class Channel(Protocol):
    async def send(self, delivery: ClaimedDelivery, alert: Alert) -> SendResult: ...


class KafkaChannel:
    """CostAlert on billing.alerts.v1, key org_id, header event-type=cost_alert, trace context of
    the settlement that fired it. At least once: consumers dedupe on alert_id."""

    def __init__(self, producer_factory: Callable[[], Any], *, timeout_s: float = 10.0) -> None:
        self._factory = producer_factory
        self._timeout = timeout_s
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def _ensure(self) -> Any:
        async with self._lock:
            if self._producer is None:
                producer = self._factory()
                try:
                    await timed(producer.start(), self._timeout)
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def send(self, delivery: ClaimedDelivery, alert: Alert) -> SendResult:
        parent = propagate.extract(alert.trace_context or {})
        attributes = {"messaging.destination.name": delivery.target, "tollgate.alert_id": alert.alert_id}
        span_name = f"{delivery.target} send"
        with _tracer.start_as_current_span(span_name, parent, SpanKind.PRODUCER, attributes):
            headers = kafka_headers_from_context({EVENT_TYPE_HEADER: payload.EVENT_TYPE})
            value = payload.cost_alert_event(alert).SerializeToString()
            try:
                producer = await self._ensure()
                await timed(
                    producer.send_and_wait(
                        delivery.target, value, key=alert.org_id.encode(), headers=headers
                    ),
                    self._timeout,
                )
            except (KafkaError, TimeoutError, OSError) as exc:
                return SendResult(False, error=describe(exc))
        return SendResult(True)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    user: str = ""
    password: str = ""
    starttls: bool = False
    timeout_s: float = 10.0


def _smtp_send(config: SmtpConfig, message: EmailMessage) -> None:
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.user:
            smtp.login(config.user, config.password)
        smtp.send_message(message)


class EmailChannel:
    """Plain-text e-mail over SMTP; smtplib runs in a thread so the event loop never blocks."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, delivery: ClaimedDelivery, alert: Alert) -> SendResult:
        if not self._config.host:
            return SendResult(False, error="SMTP is not configured (BILLING_SMTP_HOST)", permanent=True)
        message = payload.email_message(
            alert, sender=self._config.sender, recipient=delivery.target, delivery_id=delivery.id
        )
        try:
            await asyncio.to_thread(_smtp_send, self._config, message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            return SendResult(False, status_code=max(codes), error=describe(exc), permanent=min(codes) >= 500)
        except smtplib.SMTPResponseException as exc:
            return SendResult(False, status_code=exc.smtp_code, error=describe(exc))
        except (smtplib.SMTPException, OSError) as exc:
            return SendResult(False, error=describe(exc))
        return SendResult(True, status_code=250)


class WebhookChannel:
    """POSTs the alert JSON, signed with the endpoint's secret; any 2xx is delivered."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
        allow_private: bool = False,
        allowed_networks: tuple[destinations.Network, ...] = (),
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._client = client
        self._clock = clock
        self._allow_private = allow_private
        self._allowed = allowed_networks

    async def send(self, delivery: ClaimedDelivery, alert: Alert) -> SendResult:
        async with self._sessions() as session:
            endpoint = await session.get(WebhookEndpoint, delivery.target)
        if endpoint is None or not endpoint.active:
            return SendResult(False, error="the webhook endpoint was deleted", permanent=True)
        refused = await destinations.refusal(
            endpoint.url, allow_private=self._allow_private, allowed=self._allowed
        )
        if refused is not None:
            return SendResult(False, error=refused, permanent=True)
        secret = self._box.decrypt(endpoint.secret_encrypted)
        body = payload.webhook_body(alert)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Tollgate-Webhooks/1",
            signing.SIGNATURE_HEADER: signing.sign(secret, int(self._clock()), body),
            signing.DELIVERY_ID_HEADER: f"dlv_{delivery.id}",
            signing.ALERT_ID_HEADER: alert.alert_id,
            signing.EVENT_TYPE_HEADER: payload.EVENT_TYPE,
        }
        try:
            # only the status is needed: the answer's body is never read (an endpoint cannot make
            # billing hold a large or endless response)
            async with self._client.stream("POST", endpoint.url, content=body, headers=headers) as response:
                status = response.status_code
        except httpx.HTTPError as exc:
            return SendResult(False, error=describe(exc))
        if 200 <= status < 300:
            return SendResult(True, status_code=status)
        return SendResult(False, status_code=status, error=f"HTTP {status}")
