"""pg_partman plumbing shared by the services whose tables it keeps (analytics' usage tables,
billing's settlements): the retention setting, one maintenance run and the partition count, on a
session whose transaction the caller owns. Partition bounds follow the session's time zone, so the
caller sets UTC first (`utc_days`)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_UTC = text("SET LOCAL timezone = 'UTC'")
_SET_RETENTION = text(
    "UPDATE partman.part_config SET retention = CAST(:days AS text) || ' days', retention_keep_table = false"
    " WHERE parent_table = :parent AND retention IS DISTINCT FROM CAST(:days AS text) || ' days'"
)
# `run_maintenance` takes an advisory lock: a replica that does not get it does nothing
_RUN = text("SELECT partman.run_maintenance(p_parent_table => :parent, p_jobmon => false)")
_PARTITIONS = text(
    "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = CAST(:parent AS regclass) AND right(c.relname, 8) <> '_default'"
)


async def utc_days(session: AsyncSession) -> None:
    """Day partitions are UTC days, whatever the server's time zone (this transaction only)."""
    await session.execute(_UTC)


async def maintain(session: AsyncSession, parent: str, retention_days: int) -> None:
    """Sets the parent's retention (a no-op when unchanged), then makes the coming partitions and
    drops those past the retention."""
    await session.execute(_SET_RETENTION, {"parent": parent, "days": retention_days})
    await session.execute(_RUN, {"parent": parent})


async def partition_count(session: AsyncSession, parent: str) -> int:
    """The parent's partitions, its default partition aside."""
    return int((await session.execute(_PARTITIONS, {"parent": parent})).scalar_one())
