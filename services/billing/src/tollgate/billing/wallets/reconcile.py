"""Reconciliation: every wallet must equal the sum of its ledger, and its last ledger entry must
record exactly the wallet's balance and version. One statement, so one consistent snapshot: writes
in flight are either wholly seen or not at all, and a healthy platform reports nothing."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from opentelemetry import trace
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.metrics import BillingMetrics

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("tollgate.billing.reconcile")

# FULL JOIN: a ledger without a wallet row is a mismatch too (its wallet was lost).
_RECONCILE = text(
    """
    WITH sums AS (
        SELECT org_id, sum(amount_micros) AS total, count(*) AS entries
        FROM ledger_entries GROUP BY org_id
    ), last AS (
        SELECT DISTINCT ON (org_id) org_id, balance_after, wallet_version
        FROM ledger_entries ORDER BY org_id, wallet_version DESC, id DESC
    ), checked AS (
        SELECT coalesce(w.org_id, s.org_id) AS org_id,
               w.balance_micros, w.version,
               coalesce(s.total, 0) AS ledger_sum, coalesce(s.entries, 0) AS entries,
               l.balance_after, l.wallet_version
        FROM wallets w
        FULL JOIN sums s ON s.org_id = w.org_id
        LEFT JOIN last l ON l.org_id = coalesce(w.org_id, s.org_id)
    )
    SELECT * FROM checked
    WHERE balance_micros IS NULL
       OR balance_micros <> ledger_sum
       OR (entries > 0 AND (balance_after <> balance_micros OR wallet_version <> version))
    ORDER BY org_id
    LIMIT :limit
    """
)
_COUNT_WALLETS = text("SELECT count(*) FROM wallets")


class Mismatch(BaseModel):
    org_id: str
    balance_micros: int | None  # None: ledger entries without a wallet
    version: int | None
    ledger_sum_micros: int
    entries: int
    last_balance_after: int | None
    last_wallet_version: int | None


@dataclass(frozen=True, slots=True)
class Report:
    wallets_checked: int
    mismatches: list[Mismatch]


async def reconcile(session: AsyncSession, *, limit: int = 1000) -> Report:
    rows = (await session.execute(_RECONCILE, {"limit": limit})).all()
    checked = int((await session.execute(_COUNT_WALLETS)).scalar_one())
    return Report(
        checked,
        [
            Mismatch(
                org_id=r.org_id,
                balance_micros=r.balance_micros,
                version=r.version,
                ledger_sum_micros=int(r.ledger_sum),
                entries=int(r.entries),
                last_balance_after=r.balance_after,
                last_wallet_version=r.wallet_version,
            )
            for r in rows
        ],
    )


class Reconciler:
    """Runs the check and publishes it as the `billing_reconcile_mismatched_wallets` gauge."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], metrics: BillingMetrics) -> None:
        self._sessions = sessions
        self._metrics = metrics

    async def check(self, *, limit: int = 1000) -> Report:
        with _tracer.start_as_current_span("billing.reconcile") as span:
            # REPEATABLE READ: both statements see the same snapshot
            async with self._sessions() as session:
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                report = await reconcile(session, limit=limit)
            span.set_attribute("billing.wallets_checked", report.wallets_checked)
            span.set_attribute("billing.mismatches", len(report.mismatches))
        self._metrics.reconcile_mismatches.set(len(report.mismatches))
        self._metrics.reconcile_runs.inc()
        if report.mismatches:
            log.error(
                "ledger and wallets disagree",
                extra={
                    "mismatches": len(report.mismatches),
                    "org_ids": [m.org_id for m in report.mismatches[:20]],
                },
            )
        return report

    async def run(self, interval_seconds: float) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a database blip must not stop the periodic check; the next round retries
                log.exception("reconciliation failed")
                self._metrics.reconcile_failures.inc()
            await asyncio.sleep(interval_seconds)
