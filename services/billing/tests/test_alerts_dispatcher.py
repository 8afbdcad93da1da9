"""The dispatcher against a real (scratch) PostgreSQL with fake senders: claims, retries with
backoff, failure after the last attempt, abandoned leases, and two dispatchers never sharing a row."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from billing_helpers import new_org
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts import repository
from tollgate.billing.alerts.channels import SendResult
from tollgate.billing.alerts.dispatcher import AlertDispatcher
from tollgate.billing.alerts.metrics import AlertMetrics
from tollgate.billing.alerts.models import Alert
from tollgate.billing.alerts.policy import RetryPolicy
from tollgate.billing.alerts.repository import ClaimedDelivery
from tollgate.billing.alerts.schemas import AlertFact
from tollgate.billing.alerts.service import record_alerts

POLICY = RetryPolicy(max_attempts=3, base_s=60, cap_s=600)


class FakeChannel:
    """Answers with `result` for this test's org (other tests' rows get delivered quietly)."""

    def __init__(self, org: str, result: SendResult) -> None:
        self.org = org
        self.result = result
        self.sent: list[tuple[int, str, int]] = []

    async def send(self, delivery: ClaimedDelivery, alert: Alert) -> SendResult:
        if alert.org_id != self.org:
            return SendResult(True)
        self.sent.append((delivery.id, delivery.target, delivery.attempt))
        await asyncio.sleep(0)
        return self.result


def dispatcher(
    sessions: async_sessionmaker[AsyncSession], channels: dict[str, FakeChannel], metrics: AlertMetrics
) -> AlertDispatcher:
    return AlertDispatcher(sessions, channels, metrics, POLICY, batch=1000, lease_s=30)  # type: ignore[arg-type]


async def fire(sessions: async_sessionmaker[AsyncSession], org: str, emails: tuple[str, ...] = ()) -> str:
    key_id = random.randrange(1, 2**62)  # key ids are global: the quota alert's key is per key
    fact = AlertFact(org, key_id, "quota_threshold", "", "2026-11", 80, 800, 1000, 5000, emails)
    async with sessions.begin() as s:
        (alert_id,) = await record_alerts(s, [fact])
    return alert_id


async def rows(sessions: async_sessionmaker[AsyncSession], alert_id: str) -> list[dict[str, object]]:
    async with sessions() as s:
        result = await s.execute(
            text(
                "SELECT id, channel, status, attempts, last_error, last_status_code, "
                "next_attempt_at > now() AS later, delivered_at IS NOT NULL AS delivered "
                "FROM alert_deliveries WHERE alert_id = :a ORDER BY id"
            ),
            {"a": alert_id},
        )
        return [dict(r._mapping) for r in result]


async def attempt_log(sessions: async_sessionmaker[AsyncSession], delivery_id: int) -> list[str]:
    async with sessions() as s:
        result = await s.execute(
            text("SELECT outcome FROM alert_delivery_attempts WHERE delivery_id = :d ORDER BY attempt"),
            {"d": delivery_id},
        )
        return list(result.scalars())


async def make_due(sessions: async_sessionmaker[AsyncSession], alert_id: str) -> None:
    """Skips the backoff wait (the schedule itself is unit-tested) instead of sleeping."""
    async with sessions.begin() as s:
        await s.execute(
            text(
                "UPDATE alert_deliveries SET next_attempt_at = now() "
                "WHERE alert_id = :a AND status = 'pending'"
            ),
            {"a": alert_id},
        )


def counted(metrics: AlertMetrics, channel: str, outcome: str) -> float:
    return metrics.deliveries.labels(channel, outcome)._value.get()


async def test_successful_deliveries_are_marked_delivered_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    alert_id = await fire(sessions, org, ("ops@example.com",))
    kafka, email = FakeChannel(org, SendResult(True)), FakeChannel(org, SendResult(True, status_code=250))
    metrics = AlertMetrics(CollectorRegistry())
    d = dispatcher(sessions, {"kafka": kafka, "email": email}, metrics)
    await d.dispatch_once()
    await d.dispatch_once()  # nothing is due any more: no second send
    state = await rows(sessions, alert_id)
    assert [(r["channel"], r["status"], r["attempts"], r["delivered"]) for r in state] == [
        ("kafka", "delivered", 1, True),
        ("email", "delivered", 1, True),
    ]
    assert len(kafka.sent) == 1 and [t for _, t, _ in email.sent] == ["ops@example.com"]
    assert await attempt_log(sessions, int(state[1]["id"])) == ["delivered"]  # type: ignore[call-overload]
    assert counted(metrics, "email", "delivered") == 1


async def test_a_failing_delivery_backs_off_then_fails_after_the_last_attempt(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    alert_id = await fire(sessions, org)
    kafka = FakeChannel(org, SendResult(False, status_code=500, error="HTTP 500"))
    metrics = AlertMetrics(CollectorRegistry())
    d = dispatcher(sessions, {"kafka": kafka}, metrics)
    await d.dispatch_once()
    (first,) = await rows(sessions, alert_id)
    assert (first["status"], first["attempts"], first["later"], first["last_status_code"]) == (
        "pending",
        1,
        True,
        500,
    )
    await d.dispatch_once()  # backing off: not due yet
    assert len(kafka.sent) == 1
    for _ in range(2):
        await make_due(sessions, alert_id)
        await d.dispatch_once()
    (last,) = await rows(sessions, alert_id)
    assert (last["status"], last["attempts"], last["last_error"], last["later"]) == (
        "failed",
        3,
        "HTTP 500",
        None,
    )
    assert await attempt_log(sessions, int(last["id"])) == ["retry", "retry", "failed"]  # type: ignore[call-overload]
    await make_due(sessions, alert_id)
    await d.dispatch_once()
    assert [a for _, _, a in kafka.sent] == [1, 2, 3]  # a failed delivery is never sent again
    assert (counted(metrics, "kafka", "retry"), counted(metrics, "kafka", "failed")) == (2, 1)


async def test_a_permanent_failure_is_not_retried(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()
    alert_id = await fire(sessions, org)
    kafka = FakeChannel(org, SendResult(False, error="the webhook endpoint was deleted", permanent=True))
    await dispatcher(sessions, {"kafka": kafka}, AlertMetrics(CollectorRegistry())).dispatch_once()
    (row,) = await rows(sessions, alert_id)
    assert (row["status"], row["attempts"]) == ("failed", 1)


async def test_a_send_that_raises_is_recorded_and_retried(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = new_org()
    alert_id = await fire(sessions, org)

    class Exploding(FakeChannel):
        async def send(self, delivery: ClaimedDelivery, alert: Alert) -> SendResult:
            if alert.org_id == self.org:
                raise RuntimeError("boom")
            return SendResult(True)

    await dispatcher(
        sessions, {"kafka": Exploding(org, SendResult(True))}, AlertMetrics(CollectorRegistry())
    ).dispatch_once()
    (row,) = await rows(sessions, alert_id)
    assert (row["status"], row["last_error"]) == ("pending", "RuntimeError: boom")


async def test_an_abandoned_lease_is_taken_over_and_logged(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    alert_id = await fire(sessions, org)
    async with sessions.begin() as s:  # a dispatcher claims it, then dies before sending
        claimed = await repository.claim_due(s, 1000, 0.0)
    mine = [c for c in claimed if c.alert_id == alert_id]
    assert len(mine) == 1 and mine[0].attempt == 1
    kafka = FakeChannel(org, SendResult(True))
    await dispatcher(sessions, {"kafka": kafka}, AlertMetrics(CollectorRegistry())).dispatch_once()
    (row,) = await rows(sessions, alert_id)
    assert (row["status"], row["attempts"]) == ("delivered", 2)
    assert await attempt_log(sessions, int(row["id"])) == ["abandoned", "delivered"]  # type: ignore[call-overload]
    # the dead dispatcher's late result cannot overwrite the delivery any more
    async with sessions.begin() as s:
        late = await repository.finish(
            s, mine[0], status="failed", outcome="failed", retry_in_s=0, status_code=None, error="late"
        )
    assert late is False
    assert (await rows(sessions, alert_id))[0]["status"] == "delivered"


async def test_concurrent_dispatchers_never_send_the_same_delivery_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = new_org()
    alert_id = await fire(sessions, org, tuple(f"user{i}@example.com" for i in range(3)))
    channel = FakeChannel(org, SendResult(True))
    workers = [
        dispatcher(sessions, {"kafka": channel, "email": channel}, AlertMetrics(CollectorRegistry()))
        for _ in range(4)
    ]
    await asyncio.gather(*(w.dispatch_once() for w in workers))
    sends = Counter(delivery_id for delivery_id, _, _ in channel.sent)
    assert len(sends) == 4 and set(sends.values()) == {1}  # kafka + 3 e-mails, each sent once
    assert {r["status"] for r in await rows(sessions, alert_id)} == {"delivered"}
