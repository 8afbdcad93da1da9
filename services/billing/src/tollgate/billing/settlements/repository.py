"""SQL for usage settlements: one multi-row insert that reports which events are new.

`usage_settlements` is partitioned by day of `occurred_at` (migration 0007). A copy of an event
carries the same time, lands in the same partition and meets its first copy on the primary key
(event_id, occurred_at). Rows whose day has no partition (no usable time, migrated from before
partitioning, older than the partitions) sit in the default partition, which is also checked by
event id alone: a copy of one of those is refused whatever time it carries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.billing.settlements.schemas import UsageCharge

# Times further ahead than this (a gateway's wrong clock) are stored as the epoch, in the default
# partition: a day partition is premade 7 days ahead, so every day closer than this has one while
# maintenance runs, and the default partition never holds a row of a day pg_partman will create.
AHEAD = timedelta(days=2)

_INSERT_NEW = text(
    """
    INSERT INTO usage_settlements
        (event_id, org_id, key_id, hold_id, model, cost_micros, status, occurred_at)
    SELECT u.event_id, u.org_id, u.key_id, u.hold_id, u.model, u.cost_micros, u.status,
           timestamptz 'epoch' + u.occurred_ms * interval '1 millisecond'
    FROM unnest(
        CAST(:event_ids AS text[]), CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]),
        CAST(:hold_ids AS text[]), CAST(:models AS text[]), CAST(:costs AS bigint[]),
        CAST(:statuses AS text[]), CAST(:occurred AS bigint[])
    ) AS u(event_id, org_id, key_id, hold_id, model, cost_micros, status, occurred_ms)
    WHERE NOT EXISTS (SELECT 1 FROM usage_settlements_default d WHERE d.event_id = u.event_id)
    ON CONFLICT (event_id, occurred_at) DO NOTHING
    RETURNING event_id
    """
)


def stored_moment_ms(charge: UsageCharge, now: datetime) -> int:
    """The event's time as the partition key: its own (same in every copy), or 0 (the epoch, the
    default partition) when it has none or it is more than AHEAD in the future."""
    horizon_ms = int((now + AHEAD).timestamp() * 1000)
    return charge.occurred_at_ms if 0 < charge.occurred_at_ms < horizon_ms else 0


async def insert_new(session: AsyncSession, charges: Sequence[UsageCharge], now: datetime) -> set[str]:
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
            "occurred": [stored_moment_ms(c, now) for c in charges],
        },
    )
    return set(result.scalars())
