"""Bounded waits that never lose a cancellation: on an `asyncio.Event`, or on any awaitable.

On Python 3.11, `asyncio.wait_for(event.wait(), t)` runs the wait in a task of its own and, when
the caller is cancelled in the same loop turn as the event is set, returns the wait's result and
drops the cancellation (CPython gh-86296, fixed in 3.12 by rebuilding `wait_for` on
`asyncio.timeout`). A background loop that sleeps on its wake-up event this way can then survive
its own `cancel()` and hang a shutdown for good: a training worker cancelled just as a job's
NOTIFY woke it did exactly that. `asyncio.timeout` waits in the caller's own task, where
`cancel()` is always delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_event(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until `event` is set or `timeout_s` passes; True if it was set."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def timed(aw: Awaitable[T], timeout_s: float | None) -> T:
    """`asyncio.wait_for` as Python 3.12 rebuilt it: `aw` runs in the caller's task under
    `asyncio.timeout`, so a cancel that comes as `aw` finishes is raised, not traded for its
    result (on 3.11 a loop's shutdown could otherwise carry on past its own cancel). TimeoutError
    when `timeout_s` runs out; None waits as long as it takes."""
    async with asyncio.timeout(timeout_s):
        return await aw
