"""SQL for alerts and their deliveries: natural-key inserts, claiming due deliveries, attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.alerts.models import Alert, AlertDelivery, DeliveryAttempt
from tollgate.billing.alerts.schemas import AlertFact

_INSERT_ALERTS = text(
    """
    INSERT INTO alerts (alert_id, org_id, key_id, kind, budget_id, period, threshold_pct,
                        spent_micros, limit_micros, balance_micros, trace_context)
    SELECT a, o, k, kd, b, p, t, s, l, bal, CAST(:trace AS jsonb) FROM unnest(
        CAST(:alert_ids AS text[]), CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]),
        CAST(:kinds AS text[]), CAST(:budget_ids AS text[]), CAST(:periods AS text[]),
        CAST(:thresholds AS int[]), CAST(:spent AS bigint[]), CAST(:limits AS bigint[]),
        CAST(:balances AS bigint[])
    ) AS f(a, o, k, kd, b, p, t, s, l, bal)
    ON CONFLICT (alert_id) DO NOTHING
    RETURNING alert_id
    """
)

_ACTIVE_ENDPOINTS = text(
    "SELECT id, org_id FROM webhook_endpoints WHERE active AND org_id = ANY(CAST(:org_ids AS text[])) "
    "ORDER BY created_at, id"
)

_INSERT_DELIVERIES = text(
    """
    INSERT INTO alert_deliveries (alert_id, channel, target)
    SELECT * FROM unnest(CAST(:alert_ids AS text[]), CAST(:channels AS text[]), CAST(:targets AS text[]))
    ON CONFLICT (alert_id, channel, target) DO NOTHING
    """
)

# Claims due deliveries: the row locks (SKIP LOCKED) keep two dispatchers off the same rows while
# the lease is written; the lease (next_attempt_at in the future) keeps them off while it is sent.
_CLAIM = text(
    """
    WITH due AS (
        SELECT id FROM alert_deliveries
        WHERE status = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE alert_deliveries d
    SET attempts = d.attempts + 1,
        next_attempt_at = now() + make_interval(secs => CAST(:lease_s AS double precision))
    FROM due
    WHERE d.id = due.id
    RETURNING d.id, d.alert_id, d.channel, d.target, d.attempts
    """
)

_ABANDON_UNFINISHED = text(
    "UPDATE alert_delivery_attempts SET outcome = 'abandoned', finished_at = now(), "
    "error = 'the dispatcher stopped before it finished' "
    "WHERE delivery_id = ANY(CAST(:ids AS bigint[])) AND outcome = 'sending'"
)

_LOG_ATTEMPTS = text(
    """
    INSERT INTO alert_delivery_attempts (delivery_id, attempt, outcome)
    SELECT *, 'sending' FROM unnest(CAST(:ids AS bigint[]), CAST(:attempts AS int[]))
    ON CONFLICT (delivery_id, attempt) DO NOTHING
    """
)

_FINISH_ATTEMPT = text(
    """
    UPDATE alert_delivery_attempts
    SET outcome = CAST(:outcome AS text), status_code = CAST(:status_code AS int),
        error = CAST(:error AS text), finished_at = now()
    WHERE delivery_id = :id AND attempt = :attempt
    """
)

# Only the dispatcher holding the current attempt may settle the row (attempts = :attempt).
_FINISH_DELIVERY = text(
    """
    UPDATE alert_deliveries
    SET status = CAST(:status AS text),
        next_attempt_at = CASE WHEN CAST(:status AS text) = 'pending'
                               THEN now() + make_interval(secs => CAST(:retry_in_s AS double precision))
                          END,
        last_error = CAST(:error AS text),
        last_status_code = CAST(:status_code AS int),
        delivered_at = CASE WHEN CAST(:status AS text) = 'delivered' THEN now() END
    WHERE id = :id AND attempts = :attempt AND status = 'pending'
    """
)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    alert_id: str
    channel: str
    target: str
    attempt: int


async def insert_alerts(
    session: AsyncSession, facts: Sequence[AlertFact], trace: dict[str, str]
) -> list[str]:
    """Inserts each alert unless its natural key exists; returns the ids that are new."""
    if not facts:
        return []
    result = await session.execute(
        _INSERT_ALERTS,
        {
            "alert_ids": [f.alert_id for f in facts],
            "org_ids": [f.org_id for f in facts],
            "key_ids": [f.key_id for f in facts],
            "kinds": [f.kind for f in facts],
            "budget_ids": [f.budget_id for f in facts],
            "periods": [f.period for f in facts],
            "thresholds": [f.threshold_pct for f in facts],
            "spent": [f.spent_micros for f in facts],
            "limits": [f.limit_micros for f in facts],
            "balances": [f.balance_micros for f in facts],
            "trace": orjson.dumps(trace).decode(),
        },
    )
    return list(result.scalars())


async def active_endpoints(session: AsyncSession, org_ids: Sequence[str]) -> dict[str, list[str]]:
    """Active webhook endpoint ids by organisation."""
    if not org_ids:
        return {}
    rows = await session.execute(_ACTIVE_ENDPOINTS, {"org_ids": list(org_ids)})
    found: dict[str, list[str]] = {}
    for endpoint_id, org_id in rows:
        found.setdefault(org_id, []).append(endpoint_id)
    return found


async def insert_deliveries(session: AsyncSession, rows: Sequence[tuple[str, str, str]]) -> None:
    """(alert_id, channel, target) rows, each at most once."""
    if not rows:
        return
    await session.execute(
        _INSERT_DELIVERIES,
        {
            "alert_ids": [r[0] for r in rows],
            "channels": [r[1] for r in rows],
            "targets": [r[2] for r in rows],
        },
    )


async def claim_due(session: AsyncSession, limit: int, lease_s: float) -> list[ClaimedDelivery]:
    """Leases up to `limit` due deliveries to the caller and logs a 'sending' attempt for each."""
    rows = (await session.execute(_CLAIM, {"limit": limit, "lease_s": lease_s})).all()
    claimed = [ClaimedDelivery(r.id, r.alert_id, r.channel, r.target, r.attempts) for r in rows]
    if claimed:
        ids = [c.id for c in claimed]
        await session.execute(_ABANDON_UNFINISHED, {"ids": ids})
        await session.execute(_LOG_ATTEMPTS, {"ids": ids, "attempts": [c.attempt for c in claimed]})
    return claimed


async def finish(
    session: AsyncSession,
    delivery: ClaimedDelivery,
    *,
    status: str,
    outcome: str,
    retry_in_s: float,
    status_code: int | None,
    error: str | None,
) -> bool:
    """Records an attempt's result; False when the lease was lost to another dispatcher."""
    params: dict[str, Any] = {
        "id": delivery.id,
        "attempt": delivery.attempt,
        "status_code": status_code,
        "error": error,
    }
    await session.execute(_FINISH_ATTEMPT, {**params, "outcome": outcome})
    result = await session.execute(_FINISH_DELIVERY, {**params, "status": status, "retry_in_s": retry_in_s})
    return bool(getattr(result, "rowcount", 0))


async def get_alerts(session: AsyncSession, alert_ids: Sequence[str]) -> dict[str, Alert]:
    rows = await session.scalars(select(Alert).where(Alert.alert_id.in_(list(alert_ids))))
    return {a.alert_id: a for a in rows}


async def list_alerts(
    session: AsyncSession, org_id: str | None, *, limit: int, before_id: int | None
) -> list[Alert]:
    query = select(Alert).order_by(Alert.id.desc()).limit(limit)
    if org_id is not None:
        query = query.where(Alert.org_id == org_id)
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    return list(await session.scalars(query))


async def deliveries_of(
    session: AsyncSession, alert_ids: Sequence[str]
) -> tuple[list[AlertDelivery], list[DeliveryAttempt]]:
    if not alert_ids:
        return [], []
    deliveries = list(
        await session.scalars(
            select(AlertDelivery)
            .where(AlertDelivery.alert_id.in_(list(alert_ids)))
            .order_by(AlertDelivery.id)
        )
    )
    attempts = list(
        await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.attempt)
        )
    )
    return deliveries, attempts


def fired_at_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)
