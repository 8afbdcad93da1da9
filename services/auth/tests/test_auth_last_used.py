from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import OperationalError

from tollgate.auth.keys.last_used import LastUsedRecorder

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class FailingSessions:
    """A sessionmaker whose database is down."""

    def begin(self) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_touch_keeps_the_latest_stamp_per_key() -> None:
    rec = LastUsedRecorder(FailingSessions(), 5)  # type: ignore[arg-type]
    rec.touch(1, T0 + timedelta(seconds=5))
    rec.touch(1, T0)
    rec.touch(2, T0)
    assert rec.pending() == {1: T0 + timedelta(seconds=5), 2: T0}


async def test_failed_flush_keeps_the_stamps_for_the_next_one() -> None:
    rec = LastUsedRecorder(FailingSessions(), 5)  # type: ignore[arg-type]
    rec.touch(1, T0)
    assert await rec.flush() == 0
    rec.touch(1, T0 - timedelta(seconds=1))  # an older stamp arriving meanwhile does not win
    assert rec.pending() == {1: T0}


async def test_flush_with_nothing_pending_touches_no_database() -> None:
    rec = LastUsedRecorder(FailingSessions(), 5)  # type: ignore[arg-type]
    assert await rec.flush() == 0
