"""Recording alerts (inside the caller's transaction) and reading them back with their deliveries.

`record_alerts` is what settlement calls when spend crosses a threshold: the alert's natural key
(`AlertFact.alert_id`) makes it fire once per (budget, period, threshold) however many batches,
workers or restarts see the crossing; its deliveries are rows the dispatcher sends after commit
(a transactional outbox), so nothing is sent for a transaction that rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry import propagate
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.alerts import repository
from tollgate.billing.alerts.models import Alert, AlertDelivery, DeliveryAttempt
from tollgate.billing.alerts.schemas import ALERT_KINDS, AlertFact
from tollgate.common.kafka import TOPIC_BILLING_ALERTS


def _unique(facts: Sequence[AlertFact]) -> list[AlertFact]:
    seen: set[str] = set()
    unique = []
    for fact in facts:
        if fact.kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {fact.kind!r}")
        if fact.alert_id not in seen:
            seen.add(fact.alert_id)
            unique.append(fact)
    return unique


def delivery_rows(facts: Sequence[AlertFact], endpoints: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(alert_id, channel, target) for each new alert: Kafka, each e-mail, each active webhook."""
    rows: list[tuple[str, str, str]] = []
    for fact in facts:
        rows.append((fact.alert_id, "kafka", TOPIC_BILLING_ALERTS))
        for email in dict.fromkeys(e.strip() for e in fact.emails if e and e.strip()):
            rows.append((fact.alert_id, "email", email))
        for endpoint_id in endpoints.get(fact.org_id, []):
            rows.append((fact.alert_id, "webhook", endpoint_id))
    return rows


async def record_alerts(session: AsyncSession, facts: Sequence[AlertFact]) -> list[str]:
    """Inserts each alert once and queues its deliveries; returns the ids of the new alerts.

    Never commits: the caller's transaction (the settlement that crossed the threshold) does.
    """
    unique = _unique(facts)
    trace: dict[str, str] = {}
    propagate.inject(trace)
    new_ids = await repository.insert_alerts(session, unique, trace)
    if not new_ids:
        return []
    fresh = set(new_ids)
    new_facts = [f for f in unique if f.alert_id in fresh]
    endpoints = await repository.active_endpoints(session, sorted({f.org_id for f in new_facts}))
    await repository.insert_deliveries(session, delivery_rows(new_facts, endpoints))
    return [f.alert_id for f in new_facts]


@dataclass(slots=True)
class AlertView:
    alert: Alert
    deliveries: list[tuple[AlertDelivery, list[DeliveryAttempt]]]


async def list_alerts(
    session: AsyncSession, org_id: str | None, *, limit: int, before_id: int | None
) -> list[AlertView]:
    """Newest first, with each alert's deliveries and their attempt log."""
    alerts = await repository.list_alerts(session, org_id, limit=limit, before_id=before_id)
    deliveries, attempts = await repository.deliveries_of(session, [a.alert_id for a in alerts])
    attempts_by_delivery: dict[int, list[DeliveryAttempt]] = {}
    for attempt in attempts:
        attempts_by_delivery.setdefault(attempt.delivery_id, []).append(attempt)
    by_alert: dict[str, list[tuple[AlertDelivery, list[DeliveryAttempt]]]] = {}
    for d in deliveries:
        by_alert.setdefault(d.alert_id, []).append((d, attempts_by_delivery.get(d.id, [])))
    return [AlertView(a, by_alert.get(a.alert_id, [])) for a in alerts]
