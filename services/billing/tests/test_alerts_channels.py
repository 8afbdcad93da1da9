"""The senders, one attempt each: webhook (signed, over a mock HTTP transport), e-mail (a real
aiosmtpd server on a free port), Kafka (a fake producer records what would be produced)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

import httpcore
import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from billing_helpers import new_org
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts import endpoints, signing
from tollgate.billing.alerts.channels import EmailChannel, KafkaChannel, SmtpConfig, WebhookChannel
from tollgate.billing.alerts.destinations import GuardedTransport, PublicNetworkBackend, is_public
from tollgate.billing.alerts.models import Alert
from tollgate.billing.alerts.repository import ClaimedDelivery
from tollgate.billing.alerts.secretbox import SecretBox
from tollgate.common.networks import parse_networks
from tollgate.common.telemetry import header_value
from tollgate.contracts.v1 import events_pb2

NOW = 1_790_000_000


def alert(org: str = "org_1") -> Alert:
    return Alert(
        id=1,
        alert_id=f"budget_threshold:bud_1:2026-11:80:{org}",
        org_id=org,
        key_id=None,
        kind="budget_threshold",
        budget_id="bud_1",
        period="2026-11",
        threshold_pct=80,
        spent_micros=8_000_000,
        limit_micros=10_000_000,
        balance_micros=2_500_000,
        trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
        fired_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
    )


def delivery(channel: str, target: str, delivery_id: int = 42) -> ClaimedDelivery:
    return ClaimedDelivery(delivery_id, "a", channel, target, 1)


# ---- webhooks -----------------------------------------------------------------------------------
async def endpoint(sessions: async_sessionmaker[AsyncSession], box: SecretBox, org: str) -> tuple[str, str]:
    async with sessions.begin() as s:
        created = await endpoints.create(
            s, box, org_id=org, url="https://hooks.example.com/t", description=None
        )
    return created.endpoint.id, created.secret


async def test_webhook_is_signed_over_timestamp_and_body(sessions: async_sessionmaker[AsyncSession]) -> None:
    box, org = SecretBox("k"), new_org()
    endpoint_id, secret = await endpoint(sessions, box, org)
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        result = await WebhookChannel(sessions, box, client, clock=lambda: NOW, allow_private=True).send(
            delivery("webhook", endpoint_id), alert(org)
        )
    assert (result.ok, result.status_code) == (True, 204)
    (request,) = seen
    assert str(request.url) == "https://hooks.example.com/t"
    assert signing.verify(secret, request.headers["Tollgate-Signature"], request.content, now=NOW)
    assert request.headers["Tollgate-Signature"].startswith(f"t={NOW},v1=")
    assert request.headers["Tollgate-Delivery-Id"] == "dlv_42"
    assert request.headers["Tollgate-Alert-Id"] == alert(org).alert_id
    body = orjson.loads(request.content)
    assert (body["type"], body["id"], body["data"]["threshold_pct"], body["data"]["spent"]) == (
        "cost_alert",
        alert(org).alert_id,
        80,
        8.0,
    )


@pytest.mark.parametrize("status", [500, 404, 301])
async def test_webhook_non_2xx_is_a_retryable_failure(
    sessions: async_sessionmaker[AsyncSession], status: int
) -> None:
    box, org = SecretBox("k"), new_org()
    endpoint_id, _ = await endpoint(sessions, box, org)
    transport = httpx.MockTransport(lambda r: httpx.Response(status, headers={"location": "http://x/"}))
    async with httpx.AsyncClient(transport=transport) as client:
        result = await WebhookChannel(sessions, box, client, allow_private=True).send(
            delivery("webhook", endpoint_id), alert(org)
        )
    assert (result.ok, result.status_code, result.error, result.permanent) == (
        False,
        status,
        f"HTTP {status}",
        False,
    )


async def test_webhook_connection_errors_and_deleted_endpoints(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    box, org = SecretBox("k"), new_org()
    endpoint_id, _ = await endpoint(sessions, box, org)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused")

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        channel = WebhookChannel(sessions, box, client, allow_private=True)
        down = await channel.send(delivery("webhook", endpoint_id), alert(org))
        async with sessions.begin() as s:
            await endpoints.delete(s, org_id=org, endpoint_id=endpoint_id)
        gone = await channel.send(delivery("webhook", endpoint_id), alert(org))
    assert (down.ok, down.permanent, down.error) == (False, False, "ConnectError: Connection refused")
    assert (gone.ok, gone.permanent) == (False, True)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8082/admin",
        "http://localhost/x",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:192.168.0.1]/",
        "http://0.0.0.0/",
    ],
)
async def test_webhooks_to_private_addresses_are_refused_unless_allowed(
    sessions: async_sessionmaker[AsyncSession], url: str
) -> None:
    box, org = SecretBox("k"), new_org()
    async with sessions.begin() as s:
        created = await endpoints.create(s, box, org_id=org, url=url, description=None)
    calls: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(204))
    async with httpx.AsyncClient(transport=transport) as client:
        refused = await WebhookChannel(sessions, box, client).send(
            delivery("webhook", created.endpoint.id), alert(org)
        )
        allowed = await WebhookChannel(sessions, box, client, allow_private=True).send(
            delivery("webhook", created.endpoint.id), alert(org)
        )
    assert (refused.ok, refused.permanent) == (False, True)
    assert "private, loopback or reserved" in (refused.error or "")
    assert allowed.ok and len(calls) == 1  # only the allowed attempt reached the network


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("192.168.1.1", False),
        ("fe80::1%eth0", False),
        ("224.0.0.1", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


# ---- e-mail -------------------------------------------------------------------------------------
class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


async def test_email_reaches_the_smtp_server(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    channel = EmailChannel(SmtpConfig("127.0.0.1", port, "alerts@tollgate.test"))
    result = await channel.send(delivery("email", "ops@example.com", 7), alert())
    assert (result.ok, result.status_code) == (True, 250)
    (envelope,) = inbox.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == ("alerts@tollgate.test", ["ops@example.com"])
    message = message_from_bytes(envelope.original_content or b"")
    assert message["Subject"] == "[Tollgate] Budget alert: 80% reached for organisation org_1 (2026-11)"
    assert message["Message-ID"] == "<alert-delivery-7@tollgate>"
    assert "Spent:     8.000000 credits" in message.get_payload()


async def test_email_refused_for_good_is_permanent_and_unreachable_server_is_retryable(
    smtp: tuple[Inbox, int],
) -> None:
    _, port = smtp
    refused = await EmailChannel(SmtpConfig("127.0.0.1", port, "a@t.test")).send(
        delivery("email", "nobody@example.com"), alert()
    )
    assert (refused.ok, refused.status_code, refused.permanent) == (False, 550, True)
    down = await EmailChannel(SmtpConfig("127.0.0.1", free_port(), "a@t.test", timeout_s=2)).send(
        delivery("email", "ops@example.com"), alert()
    )
    assert (down.ok, down.permanent) == (False, False) and down.error
    unset = await EmailChannel(SmtpConfig("", 25, "a@t.test")).send(
        delivery("email", "x@example.com"), alert()
    )
    assert (unset.ok, unset.permanent) == (False, True)


# ---- kafka --------------------------------------------------------------------------------------
class FakeProducer:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []
        self.fail = fail
        self.started = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        pass

    async def send_and_wait(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        if self.fail:
            from aiokafka.errors import KafkaConnectionError

            raise KafkaConnectionError("broker down")
        self.sent.append((topic, value, key, headers))


async def test_kafka_cost_alert_carries_key_event_type_and_trace() -> None:
    producer = FakeProducer()
    channel = KafkaChannel(lambda: producer)
    assert (await channel.send(delivery("kafka", "billing.alerts.v1"), alert())).ok
    assert (await channel.send(delivery("kafka", "billing.alerts.v1"), alert())).ok
    assert producer.started == 1  # one producer, started lazily once
    topic, value, key, headers = producer.sent[0]
    event = events_pb2.CostAlert.FromString(value)
    assert (topic, key, header_value(headers, "event-type")) == ("billing.alerts.v1", b"org_1", "cost_alert")
    assert (event.alert_id, event.threshold_pct, event.spent_micros, event.limit_micros) == (
        alert().alert_id,
        80,
        8_000_000,
        10_000_000,
    )
    assert event.fired_at_unix_ms == int(datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp() * 1000)
    traceparent = header_value(headers, "traceparent") or ""
    assert traceparent.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"  # same trace as the settlement


async def test_kafka_down_is_a_retryable_failure() -> None:
    result = await KafkaChannel(lambda: FakeProducer(fail=True)).send(delivery("kafka", "t"), alert())
    assert (result.ok, result.permanent) == (False, False) and "broker down" in (result.error or "")


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's mock backend, remembering where each connection was asked to go."""

    def __init__(self, answer: bytes) -> None:
        self.connected: list[tuple[str, int]] = []
        self._mock = httpcore.AsyncMockBackend([answer])

    async def connect_tcp(
        self, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        self.connected.append((host, port))
        return await self._mock.connect_tcp(host, port)

    async def sleep(self, seconds: float) -> None:
        await self._mock.sleep(seconds)


def guarded_client(resolve: Any, inner: RecordingBackend, allowed: str = "") -> httpx.AsyncClient:
    backend = PublicNetworkBackend(parse_networks(allowed), resolve=resolve, inner=inner)
    # no keep-alive: each request opens (and checks) a connection of its own
    return httpx.AsyncClient(transport=GuardedTransport(backend, httpx.Limits(max_keepalive_connections=0)))


async def test_the_webhook_client_connects_only_to_the_address_it_checked() -> None:
    """DNS rebinding: a name that resolves to a public address, then to loopback. The connection goes
    to the address that was checked, and the rebound name is refused before any connection."""
    answers = iter([["8.8.4.4"], ["127.0.0.1"], ["8.8.4.4", "10.0.0.8"]])

    async def resolve(host: str, port: int) -> list[str]:
        return next(answers)

    inner = RecordingBackend(b"HTTP/1.1 204 No Content\r\n\r\n")
    async with guarded_client(resolve, inner) as client:
        assert (await client.post("http://hooks.example/in", content=b"{}")).status_code == 204
        for _ in range(2):  # rebound to loopback; then one public and one private address
            with pytest.raises(httpx.ConnectError, match="private, loopback or reserved"):
                await client.post("http://hooks.example/in", content=b"{}")
    assert inner.connected == [("8.8.4.4", 80)]  # the checked address, and nothing else


async def test_an_operator_may_allow_list_a_private_network() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["10.20.0.7"]

    inner = RecordingBackend(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    async with guarded_client(resolve, inner, allowed="10.20.0.0/16") as client:
        assert (await client.post("https://receiver.internal:8443/hook", content=b"{}")).status_code == 200
    assert inner.connected == [("10.20.0.7", 8443)]
    with pytest.raises(ValueError):
        parse_networks("10.20.0.0/16, internal")
