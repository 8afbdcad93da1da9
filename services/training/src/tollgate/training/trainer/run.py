"""One job, start to end, in its own process (`tollgate-training-job --job-id ... --attempt ...`, the
same entry point locally and in a Kubernetes Job): base prepared once, LoRA trained, checkpoints,
the adapter turned into GGUF and deployed. Stops within a step when the job is cancelled (its
progress write says so, or SIGTERM arrives); a lost lease stops it without writing anything."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from opentelemetry import propagate, trace
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from tollgate.training.config import TrainingSettings
from tollgate.training.domain import CANCELLED, FAILED
from tollgate.training.examples import ExampleError, parse_jsonl
from tollgate.training.trainer import checkpoint as checkpoints
from tollgate.training.trainer.base_cache import prepare_base
from tollgate.training.trainer.checkpoint import LoopPosition
from tollgate.training.trainer.data import featurize
from tollgate.training.trainer.gguf_adapter import convert
from tollgate.training.trainer.loop import LoopSettings, LoraLoop, StepReport
from tollgate.training.trainer.progress import ProgressWriter
from tollgate.training.trainer.store import JobContext, JobStore, NotOurs

log = logging.getLogger(__name__)
tracer = trace.get_tracer("tollgate.training.job")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class StoreReporter:
    """The loop's reporter for a real job: every step, checkpoint and epoch goes to the database,
    through the progress writer's thread, so the training thread never waits for a write."""

    def __init__(
        self, store: JobStore, writer: ProgressWriter, stop_requested: list[bool], folder: Path
    ) -> None:
        self.store = store
        self.writer = writer
        self.stop_requested = stop_requested
        self.folder = folder

    def step(self, report: StepReport) -> bool:
        self.writer.step(report)
        return self.writer.running() and not self.stop_requested[0]

    def checkpoint(self, position: LoopPosition, save: Any, metrics: dict[str, float]) -> None:
        save()  # the files, here: the next step changes the weights and optimiser state they hold
        path = self.store_path(position)
        self.writer.call(lambda: self.store.checkpoint(position, path, metrics))

    def store_path(self, position: LoopPosition) -> Path:
        return self.folder / f"step-{position.step}"

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.writer.call(lambda: self.store.epoch_end(epoch, metrics))


def torch_threads(settings: TrainingSettings, ctx: JobContext) -> int | None:
    """Threads asked for (TRAINING_JOB_THREADS, else the job's `resources.cpu_cores`), never more
    than the cores this process may run on: more threads than cores makes every op wait for a
    descheduled thread. None: torch's default, one per core, as in the benchmark's in-process
    Trainer baseline."""
    requested = settings.job_threads or ctx.cpu_cores
    if requested <= 0:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(int(requested), cores))


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_job(settings: TrainingSettings, store: JobStore) -> str:
    """Returns how the job ended here: succeeded, cancelled, failed, or "lost" (not ours any more)."""
    stop_requested = [False]

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop_requested[0] = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        ctx = store.load()
        parent = propagate.extract({"traceparent": ctx.traceparent} if ctx.traceparent else {})
        attributes = {"tollgate.job_id": ctx.job_id, "tollgate.attempt": ctx.attempt}
        with tracer.start_as_current_span("training job", context=parent, attributes=attributes):
            return _train(settings, store, ctx, stop_requested)
    except NotOurs:
        log.warning("job no longer ours; stopping without writing", extra={"job_id": store.job_id})
        return "lost"
    except ExampleError as exc:
        return _fail(store, "invalid_training_file", f"The training file is invalid: {exc}.")
    except Exception as exc:
        log.exception("training failed", extra={"job_id": store.job_id})
        return _fail(store, "training_failed", f"{type(exc).__name__}: {exc}")


def _fail(store: JobStore, code: str, message: str) -> str:
    try:
        store.end(FAILED, code, message[:1000])
    except NotOurs:
        return "lost"
    return FAILED


def _train(settings: TrainingSettings, store: JobStore, ctx: JobContext, stop_requested: list[bool]) -> str:
    hp = ctx.hyperparameters
    threads = torch_threads(settings, ctx)
    if threads is not None:
        torch.set_num_threads(threads)
    base_dir = prepare_base(settings.base_cache_dir, ctx.base_model, ctx.base_source)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).to(device())
    base_config = json.loads((base_dir / "config.json").read_text())
    examples, _ = parse_jsonl(ctx.training_path.read_bytes(), max_lines=settings.max_file_lines)
    features = featurize(examples, tokenizer, hp.max_seq_len, ctx.chat_format)
    validation = []
    if ctx.validation_path is not None:
        valid_examples, _ = parse_jsonl(ctx.validation_path.read_bytes(), max_lines=settings.max_file_lines)
        validation = featurize(valid_examples, tokenizer, hp.max_seq_len, ctx.chat_format)
    lora = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    loop = LoraLoop(
        model,
        LoopSettings(
            epochs=hp.n_epochs,
            batch_size=hp.batch_size,
            learning_rate=hp.learning_rate,
            warmup_steps=hp.warmup_steps,
            save_steps=hp.save_steps,
            seed=ctx.seed,
        ),
        features,
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        device(),
    )
    job_dir = settings.jobs_dir / ctx.job_id
    resumed = None
    found = store.latest_checkpoint()
    if found is not None:
        resumed = checkpoints.load(found[0], model, loop.optimizer, loop.scheduler)
    if not store.started(loop.total_steps, resumed, device(), torch.get_num_threads()):
        store.end(CANCELLED)
        return CANCELLED
    writer = ProgressWriter(store, settings.progress_interval_s)
    reporter = StoreReporter(store, writer, stop_requested, job_dir / "checkpoints")

    def save(position: LoopPosition) -> None:
        checkpoints.save(reporter.store_path(position), model, loop.optimizer, loop.scheduler, position)
        checkpoints.prune(reporter.folder, settings.checkpoints_kept)

    try:
        result = loop.run(reporter, start=resumed, save=save, validation=validation)
    finally:
        writer.close()  # every step is recorded before the job's status is read or it ends
    writer.raise_failure()  # NotOurs, or a failed write after the last step
    if not result.completed:
        if store.status() == CANCELLED:
            store.end(CANCELLED)
            return CANCELLED
        # SIGTERM without a cancel (the worker is shutting down), or the lease is lost: the job
        # stays unsettled and the next lease resumes it from its last checkpoint.
        return "interrupted"
    final = job_dir / "adapter"
    model.save_pretrained(str(final))
    settings.adapters_dir.mkdir(parents=True, exist_ok=True)
    adapter = convert(final, base_config, settings.adapters_dir / f"{ctx.job_id}.gguf")
    metrics = loop.evaluate(validation) if validation else {}
    store.succeed(adapter, metrics)
    return "succeeded"
