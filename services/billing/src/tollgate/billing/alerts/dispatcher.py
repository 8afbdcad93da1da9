"""Sends due alert deliveries (runs in tollgate-billing-worker; any number of workers may run it).

A round claims due rows (FOR UPDATE SKIP LOCKED, so workers never take the same row) and leases
them (next_attempt_at moves past the send), commits, sends each outside any transaction, then
records the attempt: delivered, retry at now + backoff, or failed after the last attempt. A worker
that dies mid-send loses its lease; the row comes due again and the unfinished attempt is marked
abandoned. Delivery is therefore at least once: receivers dedupe on the alert id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts import repository
from tollgate.billing.alerts.channels import Channel, SendResult, describe
from tollgate.billing.alerts.metrics import AlertMetrics
from tollgate.billing.alerts.models import Alert
from tollgate.billing.alerts.policy import RetryPolicy
from tollgate.billing.alerts.repository import ClaimedDelivery

log = logging.getLogger(__name__)


class AlertDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        metrics: AlertMetrics,
        policy: RetryPolicy,
        *,
        batch: int = 50,
        lease_s: float = 60.0,
        interval_s: float = 1.0,
    ) -> None:
        self._sessions = sessions
        self._channels = channels
        self._metrics = metrics
        self._policy = policy
        self._batch = batch
        self._lease_s = lease_s
        self._interval_s = interval_s

    async def run(self) -> None:
        backoff = self._interval_s
        while True:
            try:
                claimed = await self.dispatch_once()
                backoff = self._interval_s
            except (asyncio.CancelledError, SystemExit):
                raise
            except Exception:
                # The database (most likely) is unreachable: nothing was claimed or leases expire.
                self._metrics.dispatch_errors.inc()
                log.exception("alert dispatch round failed; retrying", extra={"backoff_s": backoff})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if claimed < self._batch:
                await asyncio.sleep(self._interval_s)

    async def dispatch_once(self) -> int:
        """One round; returns how many deliveries it attempted."""
        async with self._sessions.begin() as session:
            claimed = await repository.claim_due(session, self._batch, self._lease_s)
            alerts = await repository.get_alerts(session, sorted({c.alert_id for c in claimed}))
        await asyncio.gather(*(self._attempt(c, alerts[c.alert_id]) for c in claimed))
        return len(claimed)

    async def _attempt(self, delivery: ClaimedDelivery, alert: Alert) -> None:
        started = time.perf_counter()
        channel = self._channels.get(delivery.channel)
        if channel is None:
            result = SendResult(False, error=f"no sender for channel {delivery.channel}", permanent=True)
        else:
            try:
                result = await channel.send(delivery, alert)
            except Exception as exc:  # recorded on the attempt and retried, never dropped
                log.exception("alert delivery raised", extra={"delivery_id": delivery.id})
                result = SendResult(False, error=describe(exc))
        self._metrics.send_seconds.labels(delivery.channel).observe(time.perf_counter() - started)
        await self._record(delivery, result)

    async def _record(self, delivery: ClaimedDelivery, result: SendResult) -> None:
        delay = None if result.ok or result.permanent else self._policy.delay_after(delivery.attempt)
        if result.ok:
            status, outcome = "delivered", "delivered"
        elif delay is None:
            status, outcome = "failed", "failed"
        else:
            status, outcome = "pending", "retry"
        async with self._sessions.begin() as session:
            current = await repository.finish(
                session,
                delivery,
                status=status,
                outcome=outcome,
                retry_in_s=delay or 0.0,
                status_code=result.status_code,
                error=result.error,
            )
        if not current:
            self._metrics.leases_lost.inc()
            log.warning("alert delivery lease lost", extra={"delivery_id": delivery.id})
            return
        self._metrics.deliveries.labels(delivery.channel, outcome).inc()
        level = logging.WARNING if outcome == "failed" else logging.INFO
        log.log(
            level,
            "alert delivery attempted",
            extra={
                "delivery_id": delivery.id,
                "alert_id": delivery.alert_id,
                "channel": delivery.channel,
                "attempt": delivery.attempt,
                "outcome": outcome,
                "status_code": result.status_code,
                "retry_in_s": delay,
                "error": result.error,
            },
        )
