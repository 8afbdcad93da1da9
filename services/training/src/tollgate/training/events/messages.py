"""The training.v1 facts and the one usage.v1 event that settles a job, built from a job row.

Settlement: a job's estimated cost was held at creation (hold id = `train_<job id>`); when the job
ends, however it ends, one UsageRecorded with that id as event id and hold id charges the tokens
trained (operation "fine_tuning", which /cost/stats counts as `training`). Billing settles it
exactly once on the event id; the job row's `settled_at` makes sure we write it once too.
"""

from __future__ import annotations

import time
from datetime import datetime

from tollgate.common.kafka import TOPIC_TRAINING, TOPIC_USAGE
from tollgate.contracts.v1 import events_pb2, training_pb2
from tollgate.training.domain import CANCELLED, FAILED, FINE_TUNING_OPERATION, SUCCEEDED, cost_micros
from tollgate.training.events.models import OutboxRecord
from tollgate.training.events.outbox import outbox_record
from tollgate.training.jobs.models import Job

ENDPOINT = "/v1/fine_tuning/jobs"
_USAGE_STATUS = {SUCCEEDED: "ok", FAILED: "failed", CANCELLED: "cancelled"}


def now_ms() -> int:
    return int(time.time() * 1000)


def _ms(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1000) if moment else 0


def training_event(
    job: Job, message: training_pb2.TrainingStarted | training_pb2.TrainingProgress
) -> OutboxRecord:
    return outbox_record(TOPIC_TRAINING, job.id, message, job.traceparent)


def started(job: Job, *, resumed_from_step: int) -> OutboxRecord:
    return training_event(
        job,
        training_pb2.TrainingStarted(
            event_id=f"{job.id}:started:{job.attempt}",
            job_id=job.id,
            org_id=job.org_id,
            base_model=job.base_model,
            attempt=job.attempt,
            resumed_from_step=resumed_from_step,
            total_steps=job.total_steps,
            started_at_unix_ms=now_ms(),
        ),
    )


def progress(job: Job, *, learning_rate: float, at_unix_ms: int | None = None) -> OutboxRecord:
    return training_event(
        job,
        training_pb2.TrainingProgress(
            event_id=f"{job.id}:step:{job.step}:{job.attempt}",
            job_id=job.id,
            org_id=job.org_id,
            step=job.step,
            total_steps=job.total_steps,
            epoch=job.epoch,
            loss=job.loss or 0.0,
            learning_rate=learning_rate,
            tokens_per_second=job.tokens_per_second or 0.0,
            trained_tokens=job.trained_tokens,
            at_unix_ms=at_unix_ms if at_unix_ms is not None else now_ms(),
        ),
    )


def settlement(job: Job, status: str, error_code: str = "", error_message: str = "") -> list[OutboxRecord]:
    """TrainingCompleted on training.v1 and the settling UsageRecorded on usage.v1, for a job whose
    `trained_tokens` is final. Call only in the transaction that set `settled_at`."""
    cost = cost_micros(job.trained_tokens, job.price_micros_per_1m)
    finished = now_ms()
    completed = training_pb2.TrainingCompleted(
        event_id=f"{job.id}:completed",
        job_id=job.id,
        org_id=job.org_id,
        status=status,
        trained_tokens=job.trained_tokens,
        cost_micros=cost,
        fine_tuned_model=job.fine_tuned_model if status == SUCCEEDED else "",
        error_code=error_code,
        error_message=error_message,
        finished_at_unix_ms=finished,
    )
    usage = events_pb2.UsageRecorded(
        event_id=job.hold_id,
        org_id=job.org_id,
        key_id=job.key_id,
        user_id=job.user_id,
        model=job.base_model,
        provider="tollgate-training",
        tokens_in=job.trained_tokens,
        tokens_out=0,
        cost_micros=cost,
        latency_ms=max(finished - _ms(job.started_at or job.created_at), 0),
        status=_USAGE_STATUS[status],
        hold_id=job.hold_id,
        started_at_unix_ms=_ms(job.started_at or job.created_at),
        finished_at_unix_ms=finished,
        endpoint=ENDPOINT,
        operation=FINE_TUNING_OPERATION,
    )
    return [
        outbox_record(TOPIC_TRAINING, job.id, completed, job.traceparent),
        outbox_record(TOPIC_USAGE, job.org_id, usage, job.traceparent),
    ]


def deployed(job: Job, model_id: str) -> OutboxRecord:
    return outbox_record(
        TOPIC_TRAINING,
        job.fine_tuned_model,
        training_pb2.ModelDeployed(
            event_id=f"{model_id}:deployed",
            model_id=model_id,
            name=job.fine_tuned_model,
            org_id=job.org_id,
            base_model=job.base_model,
            upstream_model=job.id,
            job_id=job.id,
            deployed_at_unix_ms=now_ms(),
        ),
        job.traceparent,
    )


def model_deleted(model_id: str, name: str, org_id: str) -> OutboxRecord:
    return outbox_record(
        TOPIC_TRAINING,
        name,
        training_pb2.ModelDeleted(
            event_id=f"{model_id}:deleted",
            model_id=model_id,
            name=name,
            org_id=org_id,
            deleted_at_unix_ms=now_ms(),
        ),
    )
