"""SQL for usage settlements: one multi-row insert that reports which events are new."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.settlements.schemas import UsageCharge

_INSERT_NEW = text(
    """
    INSERT INTO usage_settlements (event_id, org_id, key_id, hold_id, model, cost_micros, status)
    SELECT * FROM unnest(
        CAST(:event_ids AS text[]), CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]),
        CAST(:hold_ids AS text[]), CAST(:models AS text[]), CAST(:costs AS bigint[]),
        CAST(:statuses AS text[])
    )
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
    """
)


async def insert_new(session: AsyncSession, charges: Sequence[UsageCharge]) -> set[str]:
    """Inserts a settlement row per charge; returns the event ids that were not there before."""
    if not charges:
        return set()
    result = await session.execute(
        _INSERT_NEW,
        {
            "event_ids": [c.event_id for c in charges],
            "org_ids": [c.org_id for c in charges],
            "key_ids": [c.key_id for c in charges],
            "hold_ids": [c.hold_id for c in charges],
            "models": [c.model for c in charges],
            "costs": [c.cost_micros for c in charges],
            "statuses": [c.status for c in charges],
        },
    )
    return set(result.scalars())
