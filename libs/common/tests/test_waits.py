import asyncio

import pytest

from tollgate.common.waits import timed, wait_event


async def _park_then_wake_and_cancel(waiting: asyncio.Task[object], event: asyncio.Event) -> None:
    await asyncio.sleep(0)  # the waiter is parked on the event
    event.set()
    waiting.cancel()  # in the same loop turn as the wake-up


async def test_a_cancel_in_the_same_turn_as_the_wake_up_is_delivered() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_event(event, 10))
    await _park_then_wake_and_cancel(waiting, event)
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_wait_for_on_this_python_is_the_reason() -> None:
    """The race wait_event exists for: asyncio.wait_for on 3.11 drops the cancel (if a later
    Python fixes it, this test says so and the helper can go)."""
    event = asyncio.Event()
    waiting = asyncio.create_task(asyncio.wait_for(event.wait(), 10))
    await _park_then_wake_and_cancel(waiting, event)
    assert await waiting is True


async def test_the_event_or_the_deadline_ends_the_wait() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await wait_event(event, 10) is True
    assert await wait_event(event, 0) is True  # already set


async def test_timed_delivers_a_cancel_that_comes_as_its_awaitable_finishes() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(timed(event.wait(), 10))
    await _park_then_wake_and_cancel(waiting, event)
    with pytest.raises(asyncio.CancelledError):
        await waiting


async def test_timed_returns_the_result_or_raises_timeout_error() -> None:
    assert await timed(asyncio.sleep(0, "done"), 1) == "done"
    with pytest.raises(TimeoutError):
        await timed(asyncio.sleep(10), 0.01)
    assert await timed(asyncio.sleep(0.01, "no limit"), None) == "no limit"
