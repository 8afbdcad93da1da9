"""A job's progress is written off the training thread (trainer/progress.py): the training thread
never waits for the database, every step keeps its own event and Kafka record, writes stay in
order, steps are batched at most one transaction per interval, and a cancel, a lost lease or a
failed write still reaches the loop. Also the job process's torch threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry import trace
from sqlalchemy import create_engine, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from training_jobs_testkit import HP, new_job
from training_testkit import jsonl, tiny_gemma, tiny_tokenizer

from tollgate.contracts.v1 import training_pb2
from tollgate.training.config import TrainingSettings
from tollgate.training.events.models import OutboxRecord
from tollgate.training.examples import parse_jsonl
from tollgate.training.jobs.models import Checkpoint, Job, JobEvent
from tollgate.training.trainer.data import featurize
from tollgate.training.trainer.loop import LoopSettings, LoraLoop, StepReport
from tollgate.training.trainer.progress import ProgressWriter
from tollgate.training.trainer.run import StoreReporter, torch_threads
from tollgate.training.trainer.store import JobContext, JobStore, NotOurs, RecordedStep
from tollgate.training.worker.leases import Leases


def report(step: int) -> StepReport:
    return StepReport(step, 10, 1, 2.0 / step, 1e-3, 8, 8 * step, 100.0, 0.08)


class FakeStore:
    def __init__(self, *, gate: threading.Event | None = None, answer: bool = True) -> None:
        self.gate = gate
        self.answer = answer
        self.raises: BaseException | None = None
        self.writes: list[object] = []  # a list of step numbers per transaction, or a marker

    def steps(self, recorded: Sequence[RecordedStep]) -> bool:
        if self.gate is not None:
            self.gate.wait(5)
        if self.raises is not None:
            raise self.raises
        self.writes.append([r.report.step for r in recorded])
        return self.answer

    def mark(self, name: str) -> Callable[[], None]:
        return lambda: self.writes.append(name)


def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


def test_the_training_thread_never_waits_and_writes_keep_their_order() -> None:
    gate = threading.Event()
    store = FakeStore(gate=gate)
    writer = ProgressWriter(store, min_interval_s=0)
    began = time.monotonic()
    writer.step(report(1))
    writer.step(report(2))
    writer.call(store.mark("checkpoint at 2"))
    writer.step(report(3))
    assert writer.running() and time.monotonic() - began < 0.5  # the store is still blocked
    gate.set()
    writer.close()
    flat = [x for w in store.writes for x in (w if isinstance(w, list) else [w])]
    assert flat == [1, 2, "checkpoint at 2", 3]


def test_steps_are_batched_to_one_transaction_per_interval() -> None:
    store = FakeStore()
    writer = ProgressWriter(store, min_interval_s=30)
    writer.step(report(1))
    eventually(lambda: store.writes == [[1]])  # the first step is written at once
    for step in (2, 3, 4):
        writer.step(report(step))
    time.sleep(0.2)
    assert store.writes == [[1]]  # held until the interval passes
    writer.close()  # ...or the job ends
    assert store.writes == [[1], [2, 3, 4]]


def test_a_cancelled_job_stops_the_loop_and_gets_no_more_steps() -> None:
    store = FakeStore(answer=False)
    writer = ProgressWriter(store, min_interval_s=0)
    writer.step(report(1))
    eventually(lambda: not writer.running())
    writer.step(report(2))
    writer.close()
    assert store.writes == [[1]]


def test_a_lost_lease_is_raised_on_the_training_thread_and_nothing_more_is_written() -> None:
    store = FakeStore()
    store.raises = NotOurs("job")
    writer = ProgressWriter(store, min_interval_s=0)
    writer.step(report(1))
    eventually(lambda: writer._failure is not None)
    with pytest.raises(NotOurs):
        writer.running()
    writer.call(store.mark("checkpoint"))
    writer.close()
    assert store.writes == []
    with pytest.raises(NotOurs):
        writer.raise_failure()


def test_records_written_by_the_writer_carry_the_training_threads_trace() -> None:
    seen: list[str] = []

    class TraceStore(FakeStore):
        def steps(self, recorded: Sequence[RecordedStep]) -> bool:
            seen.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))
            return True

    provider = trace.get_tracer_provider()
    with trace.get_tracer("test", tracer_provider=provider).start_as_current_span("training job") as span:
        writer = ProgressWriter(TraceStore(), min_interval_s=0)
        writer.step(report(1))
        writer.close()
    assert seen == [format(span.get_span_context().trace_id, "032x")]


async def leased_store(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, database_url: str
) -> tuple[JobStore, str]:
    job_id = await new_job(sessions, tmp_path)
    leases = Leases(sessions, "w1", ttl_s=30, max_attempts=2)
    await leases.validate_pending()
    assert await leases.next() is not None
    return JobStore(create_engine(database_url, pool_size=1), job_id, 1), job_id


async def rows(sessions: async_sessionmaker[AsyncSession], model: type, job_id: str | None = None) -> list:
    async with sessions() as session:
        stmt = select(model).order_by(model.id)  # type: ignore[attr-defined]
        if job_id is not None:
            stmt = stmt.where(model.job_id == job_id)  # type: ignore[attr-defined]
        return list((await session.execute(stmt)).scalars())


async def test_a_batch_of_steps_is_one_transaction_with_an_event_and_a_record_each(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, database_url: str
) -> None:
    store, job_id = await leased_store(sessions, tmp_path, database_url)
    assert store.started(10, None, "cpu", threads=2)
    ended = [datetime(2026, 12, 1, tzinfo=UTC) + timedelta(seconds=10 * i) for i in range(3)]
    assert store.steps([RecordedStep(report(i + 1), ended[i], 10.0 * i) for i in range(3)])
    events = await rows(sessions, JobEvent, job_id)
    assert events[-4].data == {"total_steps": 10, "device": "cpu", "threads": 2}
    steps = [e for e in events if e.type == "metrics"]
    assert [e.data["step"] for e in steps] == [1, 2, 3]
    assert [e.created_at for e in steps] == ended  # when each step ended, not when it was written
    progress = [
        training_pb2.TrainingProgress.FromString(r.payload)
        for r in await rows(sessions, OutboxRecord)
        if r.event_type == "TrainingProgress"
    ]
    assert [(p.step, p.trained_tokens) for p in progress] == [(1, 8), (2, 16), (3, 24)]
    assert len({p.event_id for p in progress}) == 3
    assert [p.at_unix_ms for p in progress] == [int(t.timestamp() * 1000) for t in ended]
    (job,) = await rows(sessions, Job)
    assert (job.step, job.trained_tokens) == (3, 24) and job.estimated_finish is not None

    async with sessions.begin() as session:  # cancelled: nothing more is written, the loop stops
        await session.execute(update(Job).where(Job.id == job_id).values(status="cancelled"))
    assert not store.steps([RecordedStep.now(report(4))])
    assert len(await rows(sessions, JobEvent, job_id)) == len(events)
    with pytest.raises(NotOurs):  # another attempt's process writes nothing
        JobStore(store.engine, job_id, 2).steps([RecordedStep.now(report(4))])
    store.engine.dispose()


async def test_a_job_loop_records_every_step_checkpoint_and_epoch_in_order(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, database_url: str
) -> None:
    from peft import LoraConfig, get_peft_model

    from tollgate.training.trainer import checkpoint as checkpoints
    from tollgate.training.trainer.run import LORA_TARGETS

    store, job_id = await leased_store(sessions, tmp_path, database_url)
    tokenizer = tiny_tokenizer()
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(tiny_gemma(len(tokenizer)), lora)
    examples, _ = parse_jsonl(jsonl(), max_lines=100)
    settings = LoopSettings(epochs=2, batch_size=4, learning_rate=1e-2, seed=3)
    loop = LoraLoop(model, settings, featurize(examples, tokenizer, 64), tokenizer.pad_token_id, "cpu")
    assert store.started(loop.total_steps, None, "cpu")
    writer = ProgressWriter(store, min_interval_s=0.05)
    reporter = StoreReporter(store, writer, [False], tmp_path / "checkpoints")

    def save(position: checkpoints.LoopPosition) -> None:
        checkpoints.save(reporter.store_path(position), model, loop.optimizer, loop.scheduler, position)

    try:
        result = loop.run(reporter, save=save)
    finally:
        writer.close()
    assert result.completed and loop.total_steps == 4
    messages = [e.message.split(":")[0] for e in await rows(sessions, JobEvent, job_id)]
    assert messages[messages.index("Fine-tuning job started") :] == [
        "Fine-tuning job started",
        "Step 1/4",
        "Step 2/4",
        "Checkpoint created at step 2",
        "Epoch 1 done",
        "Step 3/4",
        "Step 4/4",
        "Checkpoint created at step 4",
        "Epoch 2 done",
    ]
    assert sorted(c.step for c in await rows(sessions, Checkpoint, job_id)) == [2, 4]
    kinds = [r.event_type for r in await rows(sessions, OutboxRecord)]
    assert kinds.count("TrainingProgress") == 4
    store.engine.dispose()


def test_a_job_never_gets_more_torch_threads_than_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = JobContext("ftjob-1", 1, "a", "tiny", Path("b"), "gemma", Path("t"), None, HP, 0, 0.0, None)
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1})
    assert torch_threads(TrainingSettings(), ctx) is None  # torch's default, one per core
    assert torch_threads(TrainingSettings(), replace(ctx, cpu_cores=8.0)) == 2
    assert torch_threads(TrainingSettings(), replace(ctx, cpu_cores=0.5)) == 1
    assert torch_threads(TrainingSettings(job_threads=1), replace(ctx, cpu_cores=8.0)) == 1
