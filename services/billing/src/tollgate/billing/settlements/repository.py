"""SQL for usage settlements: one multi-row insert that reports which events are new.

`usage_settlements` is partitioned by `event_day`, UTC midnight of the event's own time (migration
0007). Every copy of an event carries the time of its first copy (each producer re-sends the first
copy's bytes, docs/billing.md "Exactly-once settlement at scale"), so a copy lands in the same
partition and meets its first copy on the primary key (event_id, event_day); keying on the day, not
the millisecond, also catches a copy whose producer re-stamped it the same UTC day. Rows whose day
has no partition (no usable time, migrated from before partitioning, older than the partitions) sit
in the default partition, which is also checked by event id alone: a copy of one of those is
refused whatever time it carries."""

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
DAY_MS = 86_400_000

_INSERT_NEW = text(
    """
    INSERT INTO usage_settlements
        (event_id, org_id, key_id, hold_id, model, cost_micros, status, event_day)
    SELECT u.event_id, u.org_id, u.key_id, u.hold_id, u.model, u.cost_micros, u.status,
           timestamptz 'epoch' + u.day_ms * interval '1 millisecond'
    FROM unnest(
        CAST(:event_ids AS text[]), CAST(:org_ids AS text[]), CAST(:key_ids AS bigint[]),
        CAST(:hold_ids AS text[]), CAST(:models AS text[]), CAST(:costs AS bigint[]),
        CAST(:statuses AS text[]), CAST(:days AS bigint[])
    ) AS u(event_id, org_id, key_id, hold_id, model, cost_micros, status, day_ms)
    WHERE NOT EXISTS (SELECT 1 FROM usage_settlements_default d WHERE d.event_id = u.event_id)
    ON CONFLICT (event_id, event_day) DO NOTHING
    RETURNING event_id
    """
)


def event_day_ms(charge: UsageCharge, now: datetime) -> int:
    """The partition key, in ms since the epoch: UTC midnight of the event's own time (the same in
    every copy), or 0 (the epoch, the default partition) when it has none or it is more than AHEAD
    in the future."""
    horizon_ms = int((now + AHEAD).timestamp() * 1000)
    at = charge.occurred_at_ms
    return at - at % DAY_MS if 0 < at < horizon_ms else 0


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
            "days": [event_day_ms(c, now) for c in charges],
        },
    )
    return set(result.scalars())
