"""Types and rules several folders share: job statuses, ids, names, hyperparameters and cost."""

from __future__ import annotations

import math
import re
import secrets
from dataclasses import asdict, dataclass
from typing import Any

# OpenAI's job statuses; a job ends in one of TERMINAL.
VALIDATING = "validating_files"
QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
ACTIVE = frozenset({VALIDATING, QUEUED, RUNNING})

# Registry statuses of an organisation's model (SloughGPT: training -> ready -> deployed).
MODEL_REGISTERED = "registered"
MODEL_TRAINING = "training"
MODEL_READY = "ready"
MODEL_DEPLOYED = "deployed"
MODEL_FAILED = "failed"
BASE_ACTIVE = "active"
BASE_MODEL = "base_model"
LANGUAGE_MODEL = "language_model"

FINE_TUNING_OPERATION = "fine_tuning"  # UsageRecorded.operation: /cost/stats' `training` line
SUFFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def job_hold_id(job_id: str) -> str:
    """The billing hold of a job, and the event id of the one usage event that settles it."""
    return f"train_{job_id}"


def fine_tuned_name(base: str, org_id: str, suffix: str | None, job_id: str) -> str:
    """ft:<base>:<org>:<suffix>:<job id> (OpenAI's shape); the gateway reads the org back from it."""
    return f"ft:{base}:{org_id}:{suffix or ''}:{job_id}"


def cost_micros(tokens: int, price_micros_per_1m: int) -> int:
    """Tokens trained at a price per 1M tokens, rounded up to the micro-credit."""
    return math.ceil(tokens * price_micros_per_1m / 1_000_000) if tokens > 0 else 0


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    """What a job trains with, resolved from either surface's request ("auto" already decided)."""

    n_epochs: int
    batch_size: int
    learning_rate: float
    learning_rate_multiplier: float
    warmup_steps: int
    save_steps: int  # 0: a checkpoint at the end of every epoch
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    max_seq_len: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Hyperparameters:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class Resources:
    """SloughGPT's `resources`: what a job asks its executor for (mapped onto a Kubernetes Job)."""

    cpu_cores: float = 0
    memory_gb: float = 0
    gpu_count: int = 0
    gpu_type: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Resources:
        data = data or {}
        return cls(
            cpu_cores=float(data.get("cpu_cores", 0)),
            memory_gb=float(data.get("memory_gb", 0)),
            gpu_count=int(data.get("gpu_count", 0)),
            gpu_type=str(data.get("gpu_type", "")),
        )
