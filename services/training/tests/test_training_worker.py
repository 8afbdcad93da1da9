"""Leases on a real database (one worker per job, take-over after a lost lease, give up after the
last attempt, settle what a dead process left), the worker loop with a fake executor, the local
executor's processes, and the outbox relay's order and its wake-up on the outbox's NOTIFY."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from training_jobs_testkit import new_job

from tollgate.training.events.models import OutboxRecord
from tollgate.training.events.outbox import OutboxMetrics, OutboxRelay
from tollgate.training.jobs.models import Job
from tollgate.training.metrics import WorkerMetrics
from tollgate.training.notify import JOBS_CHANNEL, OUTBOX_CHANNEL, NotifyListener
from tollgate.training.worker.executors import Handle, LocalExecutor
from tollgate.training.worker.leases import Leases
from tollgate.training.worker.service import TrainingWorker


def leases(sessions: async_sessionmaker[AsyncSession], owner: str = "w1", attempts: int = 2) -> Leases:
    return Leases(sessions, owner, ttl_s=30, max_attempts=attempts)


async def job_row(sessions: async_sessionmaker[AsyncSession], job_id: str) -> Job:
    async with sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def expire(sessions: async_sessionmaker[AsyncSession], job_id: str) -> None:
    async with sessions.begin() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=past))


async def test_jobs_are_leased_oldest_first_once_each(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    first, second = await new_job(sessions, tmp_path), await new_job(sessions, tmp_path)
    assert await leases(sessions).next() is None  # files not validated yet
    assert await leases(sessions).validate_pending() == 2
    assert (await job_row(sessions, first)).status == "queued"
    taken = await asyncio.gather(*(leases(sessions, f"w{i}").next() for i in range(4)))
    got = sorted((lease.job_id, lease.attempt) for lease in taken if lease is not None)
    assert got == sorted([(first, 1), (second, 1)])
    row = await job_row(sessions, first)
    assert row.status == "running" and row.lease_owner and row.lease_expires_at
    assert await leases(sessions).next() is None


async def test_a_lost_lease_is_taken_over_then_given_up(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    job_id = await new_job(sessions, tmp_path)
    await leases(sessions).validate_pending()
    one = await leases(sessions, "w1").next()
    assert one is not None and await leases(sessions, "w2").next() is None  # the lease holds
    await expire(sessions, job_id)
    two = await leases(sessions, "w2").next()
    assert two is not None and two.resumed and two.attempt == 2
    assert await leases(sessions, "w1").renew(job_id, 1) is None  # the old owner lost it
    assert await leases(sessions, "w2").renew(job_id, 2) == "running"
    await expire(sessions, job_id)
    assert await leases(sessions, "w3").next() is None  # max attempts: failed and settled
    row = await job_row(sessions, job_id)
    assert row.status == "failed" and row.settled_at and row.error and row.error["code"] == "worker_lost"
    async with sessions() as session:
        kinds = [r.event_type for r in (await session.execute(select(OutboxRecord))).scalars()]
    assert kinds == ["TrainingCompleted", "UsageRecorded"]


async def test_a_dead_process_is_retried_or_its_cancel_settled(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    job_id = await new_job(sessions, tmp_path)
    await leases(sessions).validate_pending()
    lease = await leases(sessions).next()
    assert lease is not None
    assert await leases(sessions).ended_without_settling(job_id, 1, -9) == "retry"
    again = await leases(sessions).next()
    assert again is not None and again.attempt == 2
    async with sessions.begin() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(status="cancelled", trained_tokens=100)
        )
    assert await leases(sessions).ended_without_settling(job_id, 2, -9) == "cancelled"
    row = await job_row(sessions, job_id)
    assert row.settled_at and row.cost_micros == 100  # 100 tokens at 1 credit per 1M tokens
    assert await leases(sessions).ended_without_settling(job_id, 2, -9) is None  # once


class FakeExecutor:
    def __init__(self) -> None:
        self.started: list[tuple[str, int]] = []
        self.stopped: list[str] = []
        self.codes: dict[str, int] = {}
        self.warmed = 0

    async def start(self, job_id: str, attempt: int, resources: Mapping[str, object]) -> Handle:
        self.started.append((job_id, attempt))
        return Handle(job_id, attempt, job_id)

    async def exit_code(self, handle: Handle) -> int | None:
        return self.codes.get(handle.job_id)

    async def stop(self, handle: Handle, grace_s: float) -> None:
        self.stopped.append(handle.job_id)
        self.codes[handle.job_id] = -15

    async def close(self) -> None:
        return None

    async def warm(self) -> None:
        self.warmed += 1


async def test_the_worker_respects_its_limit_and_stops_cancelled_jobs(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    jobs = [await new_job(sessions, tmp_path) for _ in range(3)]
    executor = FakeExecutor()
    worker = TrainingWorker(
        leases(sessions),
        executor,
        WorkerMetrics(CollectorRegistry()),
        max_jobs=2,
        poll_s=0.01,
        heartbeat_s=0.0,
        stop_grace_s=1,
    )
    await worker.tick()
    assert executor.started == [(jobs[0], 1), (jobs[1], 1)]
    assert executor.warmed == 0  # no free slot: no spare process to take CPU from the jobs
    async with sessions.begin() as session:
        await session.execute(
            update(Job).where(Job.id == jobs[0]).values(status="cancelled", cancel_requested=True)
        )
    await worker.tick()  # sees the cancel
    await asyncio.sleep(0.05)
    assert executor.stopped == [jobs[0]]
    await worker.tick()  # the process ended: the job is settled as cancelled, the next one starts
    assert (await job_row(sessions, jobs[0])).settled_at is not None
    assert executor.started[-1] == (jobs[2], 1)


async def test_the_local_executor_hands_a_job_to_its_warm_spare(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    out = tmp_path / "out.txt"
    script.write_text(
        "import sys, time\n"
        "args = sys.argv[1:]\n"
        "line = sys.stdin.readline().strip() if args == ['--wait'] else ' '.join(args)\n"
        f"open({str(out)!r}, 'a').write(line + '\\n')\n"
        "time.sleep(60 if 'slow' in line else 0)\n"
    )
    executor = LocalExecutor([sys.executable, str(script)], {}, warm_spare=True)
    await executor.warm()
    handle = await executor.start("ftjob-1", 1, {})
    await asyncio.wait_for(handle.ref.wait(), 30)
    assert await executor.exit_code(handle) == 0
    await executor.warm()
    slow = await executor.start("ftjob-slow", 2, {})
    for _ in range(300):  # the process has taken its job before it is stopped
        if "ftjob-slow" in out.read_text():
            break
        await asyncio.sleep(0.05)
    await executor.stop(slow, grace_s=0.5)
    assert await executor.exit_code(slow) not in (None, 0)
    await executor.close()
    assert out.read_text().splitlines() == ["ftjob-1 1", "ftjob-slow 2"]


def hour_poll_worker(
    sessions: async_sessionmaker[AsyncSession],
    executor: FakeExecutor,
    listener: NotifyListener | None = None,
) -> TrainingWorker:
    """A worker whose polls take an hour: only a wake-up (a NOTIFY, a kick) runs a round."""
    return TrainingWorker(
        leases(sessions),
        executor,
        WorkerMetrics(CollectorRegistry()),
        max_jobs=1,
        poll_s=3600,
        idle_poll_s=3600,
        heartbeat_s=3600,
        stop_grace_s=1,
        listener=listener,
    )


async def test_an_idle_worker_starts_a_new_job_on_its_notification(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """An hour between idle rounds: only migration 0004's NOTIFY (or the listener's wake when it
    connects) can start a job created after the worker went idle."""
    executor = FakeExecutor()
    worker = hour_poll_worker(sessions, executor, NotifyListener(engine, JOBS_CHANNEL))
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.5)  # the first round and the connect-time wake are over
        assert executor.started == []
        job_id = await new_job(sessions, tmp_path)
        for _ in range(1000):  # 10 s
            if executor.started:
                break
            await asyncio.sleep(0.01)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert executor.started == [(job_id, 1)]


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, topic: str, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> Any:
        self.sent.append((topic, value, key, headers))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_the_outbox_is_published_in_order_and_emptied(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions.begin() as session:
        for i in range(5):
            session.add(
                OutboxRecord(
                    topic="training.v1",
                    key="k",
                    event_type="X",
                    payload=bytes([i]),
                    headers={"event-type": "X"},
                )
            )
    producer = FakeProducer()
    relay = OutboxRelay(sessions, lambda: producer, OutboxMetrics(CollectorRegistry()), batch=2)  # type: ignore[arg-type, return-value]
    assert [await relay.publish_once(producer) for _ in range(4)] == [2, 2, 1, 0]  # type: ignore[arg-type]
    assert [v for _, v, _, _ in producer.sent] == [bytes([i]) for i in range(5)]
    assert producer.sent[0][3] == [("event-type", b"X")]
    async with sessions() as session:
        assert list((await session.execute(select(OutboxRecord))).scalars()) == []


def hour_interval_relay(
    sessions: async_sessionmaker[AsyncSession], producer: FakeProducer, listener: NotifyListener | None = None
) -> OutboxRelay:
    """A relay whose interval is an hour: only a wake-up (a NOTIFY, a kick) runs a round."""
    return OutboxRelay(
        sessions,
        lambda: producer,  # type: ignore[arg-type, return-value]
        OutboxMetrics(CollectorRegistry()),
        interval_s=3600,
        listener=listener,
    )


async def test_a_committed_record_wakes_the_relay_without_waiting_for_its_interval(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """An hour's interval: only the trigger's NOTIFY (or the listener's wake on connecting) can
    make the relay publish the records committed after it started. A second record after the
    first was published shows the LISTEN itself, not only the connect-time wake."""
    producer = FakeProducer()
    relay = hour_interval_relay(sessions, producer, NotifyListener(engine, OUTBOX_CHANNEL))
    running = asyncio.create_task(relay.run())

    async def commit_and_await_publish(payload: bytes) -> None:
        async with sessions.begin() as session:
            session.add(
                OutboxRecord(topic="training.v1", key="k", event_type="X", payload=payload, headers={})
            )
        for _ in range(1000):  # 10 s
            if payload in [v for _, v, _, _ in producer.sent]:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{payload!r} was not published")

    try:
        await asyncio.sleep(0.5)  # the first round and the connect-time wake are over
        await commit_and_await_publish(b"first")
        await asyncio.sleep(0.2)
        await commit_and_await_publish(b"second")
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert [v for _, v, _, _ in producer.sent] == [b"first", b"second"]


async def _stops_when_cancelled_as_it_is_woken(running: asyncio.Task[None], kick: Any) -> bool:
    """Cancel a loop in the same turn as its wake-up (a NOTIFY arriving as SIGTERM does): the
    cancel must end it. With asyncio.wait_for on 3.11 the loop swallowed it and waited an hour."""
    await asyncio.sleep(0.5)  # idle, parked on its wake-up
    kick()
    running.cancel()
    done, _ = await asyncio.wait({running}, timeout=10)
    if not done:
        running.cancel()  # let the test end either way
    return running in done


async def test_an_idle_worker_stops_when_cancelled_as_a_notification_wakes_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    worker = hour_poll_worker(sessions, FakeExecutor())
    assert await _stops_when_cancelled_as_it_is_woken(asyncio.create_task(worker.run()), worker.kick)


async def test_an_idle_relay_stops_when_cancelled_as_a_notification_wakes_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    relay = hour_interval_relay(sessions, FakeProducer())
    assert await _stops_when_cancelled_as_it_is_woken(asyncio.create_task(relay.run()), relay.kick)
