"""Jobs as each surface shows them: OpenAI's fine_tuning.job (events, checkpoints) and SloughGPT's
training status."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from tollgate.common.money import micros_to_credits
from tollgate.training.domain import CANCELLED, FAILED, QUEUED, RUNNING, SUCCEEDED, VALIDATING, cost_micros
from tollgate.training.jobs.models import Checkpoint, Job, JobEvent


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def openai_job(job: Job) -> dict[str, Any]:
    hp = job.hyperparameters
    shown = {
        "n_epochs": hp["n_epochs"],
        "batch_size": hp["batch_size"],
        "learning_rate_multiplier": hp["learning_rate_multiplier"],
    }
    return {
        "object": "fine_tuning.job",
        "id": job.id,
        "model": job.base_model,
        "created_at": _unix(job.created_at),
        "finished_at": _unix(job.finished_at) if job.settled_at else None,
        "fine_tuned_model": job.fine_tuned_model if job.status == SUCCEEDED else None,
        "organization_id": job.org_id,
        "result_files": [],
        "status": job.status,
        "validation_file": job.validation_file_id,
        "training_file": job.training_file_id,
        "hyperparameters": shown,
        "method": {"type": "supervised", "supervised": {"hyperparameters": shown}},
        "trained_tokens": job.trained_tokens if job.settled_at else None,
        "error": job.error,
        "user_provided_suffix": job.suffix,
        "seed": job.seed,
        "estimated_finish": _unix(job.estimated_finish),
        "integrations": [],
        "metadata": job.metadata_,
    }


def openai_event(event: JobEvent) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": f"ftevent-{event.id}",
        "created_at": _unix(event.created_at),
        "level": event.level,
        "message": event.message,
        "data": event.data or {},
        "type": event.type,
    }


def openai_checkpoint(job: Job, ckpt: Checkpoint) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": ckpt.id,
        "created_at": _unix(ckpt.created_at),
        "fine_tuned_model_checkpoint": f"{job.fine_tuned_model}:ckpt-step-{ckpt.step}",
        "step_number": ckpt.step,
        "metrics": {"step": ckpt.step, **ckpt.metrics},
        "fine_tuning_job_id": job.id,
    }


# SloughGPT says "training" for a running job; the other words are ours, in its style
_SEED_STATUS = {
    VALIDATING: "queued",
    QUEUED: "queued",
    RUNNING: "training",
    SUCCEEDED: "completed",
    FAILED: "failed",
    CANCELLED: "stopped",
}


def sloughgpt_job(job: Job, now: datetime) -> dict[str, Any]:
    """GET /training/jobs/{id} (and /fine-tuning/jobs/{id}) in SloughGPT's shape."""
    metrics: dict[str, Any] = {}
    if job.loss is not None:
        metrics["loss"] = round(job.loss, 6)
        metrics["perplexity"] = round(math.exp(min(job.loss, 50.0)), 4)
    if job.valid_loss is not None:
        metrics["validation_loss"] = round(job.valid_loss, 6)
    if job.valid_accuracy is not None:
        metrics["accuracy"] = round(job.valid_accuracy, 6)
    hours = 0.0
    if job.started_at:
        hours = ((job.finished_at or now) - job.started_at).total_seconds() / 3600
    on_gpu = (job.device or "").startswith("cuda")
    progress = job.step / job.total_steps if job.total_steps else 0.0
    if job.status == SUCCEEDED:
        progress = 1.0
    hp = job.hyperparameters
    return {
        "id": job.id,
        "status": _SEED_STATUS[job.status],
        "progress": round(progress, 4),
        "current_epoch": job.epoch,
        "total_epochs": hp["n_epochs"],
        "current_step": job.step,
        "total_steps": job.total_steps,
        "metrics": metrics,
        "resources_used": {
            "gpu_hours": round(hours if on_gpu else 0.0, 6),
            "cpu_hours": round(0.0 if on_gpu else hours, 6),
            "trained_tokens": job.trained_tokens,
            "cost_usd": micros_to_credits(
                job.cost_micros
                if job.settled_at
                else cost_micros(job.trained_tokens, job.price_micros_per_1m)
            ),
        },
        "estimated_completion": _iso(job.estimated_finish),
        "model_id": job.registry_model_id,
        "base_model_id": job.base_model_id,
        "fine_tuned_model": job.fine_tuned_model if job.status == SUCCEEDED else None,
        "config": {
            "batch_size": hp["batch_size"],
            "learning_rate": hp["learning_rate"],
            "num_epochs": hp["n_epochs"],
            "warmup_steps": hp["warmup_steps"],
            "save_steps": hp["save_steps"],
        },
        "hyperparameters": {
            "lora_r": hp["lora_r"],
            "lora_alpha": hp["lora_alpha"],
            "lora_dropout": hp["lora_dropout"],
        },
        "resources": job.resources,
        "created_at": _iso(job.created_at),
        "error": job.error,
    }
