"""From each surface's body to one JobRequest: "auto" decided, SloughGPT's names mapped."""

from __future__ import annotations

from tollgate.common.errors import InvalidRequest
from tollgate.training.config import TrainingSettings
from tollgate.training.domain import Hyperparameters, Resources
from tollgate.training.jobs.schemas import (
    LoraHyperparameters,
    OpenAIHyperparameters,
    OpenAIJobCreate,
    SloughGPTResources,
    SloughGPTTrainingConfig,
    SloughGPTTrainingJobCreate,
)
from tollgate.training.jobs.service import JobRequest

MAX_EPOCHS = 50
MAX_BATCH = 256
MAX_LR_MULTIPLIER = 100.0


def _hyper(
    settings: TrainingSettings,
    *,
    n_epochs: int | None = None,
    batch_size: int | None = None,
    multiplier: float | None = None,
    warmup_steps: int | None = None,
    save_steps: int | None = None,
    lora: LoraHyperparameters | None = None,
) -> Hyperparameters:
    lora = lora or LoraHyperparameters()
    multiplier = 1.0 if multiplier is None else multiplier
    return Hyperparameters(
        n_epochs=n_epochs or settings.default_n_epochs,
        batch_size=batch_size or settings.default_batch_size,
        learning_rate=settings.base_learning_rate * multiplier,
        learning_rate_multiplier=multiplier,
        warmup_steps=warmup_steps or 0,
        save_steps=save_steps or 0,
        lora_r=lora.lora_r or settings.default_lora_r,
        lora_alpha=lora.lora_alpha or settings.default_lora_alpha,
        lora_dropout=settings.default_lora_dropout if lora.lora_dropout is None else lora.lora_dropout,
        max_seq_len=settings.max_seq_len,
    )


def openai_request(body: OpenAIJobCreate, settings: TrainingSettings) -> JobRequest:
    hp = body.hyperparameters
    if body.method is not None and body.method.supervised is not None:
        if hp is not None:
            raise InvalidRequest("Give hyperparameters or method, not both.", param="hyperparameters")
        hp = body.method.supervised.hyperparameters
    hp = hp or OpenAIHyperparameters()
    n_epochs = _int(hp.n_epochs, "hyperparameters.n_epochs", MAX_EPOCHS)
    batch_size = _int(hp.batch_size, "hyperparameters.batch_size", MAX_BATCH)
    multiplier = None
    if hp.learning_rate_multiplier != "auto":
        multiplier = float(hp.learning_rate_multiplier)
        if not 0 < multiplier <= MAX_LR_MULTIPLIER:
            raise InvalidRequest(
                f"hyperparameters.learning_rate_multiplier must be in (0, {MAX_LR_MULTIPLIER}].",
                param="hyperparameters.learning_rate_multiplier",
            )
    if body.integrations:
        raise InvalidRequest("integrations are not supported.", param="integrations")
    return JobRequest(
        surface="openai",
        model_ref=body.model,
        training_file_id=body.training_file,
        validation_file_id=body.validation_file,
        hyperparameters=_hyper(settings, n_epochs=n_epochs, batch_size=batch_size, multiplier=multiplier),
        resources=Resources(),
        suffix=body.suffix,
        seed=body.seed,
        metadata=body.metadata,
    )


def _int(value: str | int, param: str, upper: int) -> int | None:
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise InvalidRequest(f"{param} must be 'auto' or an integer from 1 to {upper}.", param=param)
    return value


def sloughgpt_hyper(
    settings: TrainingSettings, config: SloughGPTTrainingConfig, lora: LoraHyperparameters | None = None
) -> Hyperparameters:
    multiplier = None if config.learning_rate is None else config.learning_rate / settings.base_learning_rate
    return _hyper(
        settings,
        n_epochs=config.num_epochs or config.epochs,
        batch_size=config.batch_size,
        multiplier=multiplier,
        warmup_steps=config.warmup_steps,
        save_steps=config.save_steps,
        lora=lora,
    )


def sloughgpt_resources(resources: SloughGPTResources) -> Resources:
    return Resources(
        cpu_cores=resources.cpu_cores,
        memory_gb=resources.memory_gb,
        gpu_count=resources.gpu_count,
        gpu_type=resources.gpu_type or "",
    )


def sloughgpt_training_request(body: SloughGPTTrainingJobCreate, settings: TrainingSettings) -> JobRequest:
    return JobRequest(
        surface="training",
        model_ref=body.model_id,
        training_file_id=body.dataset_path,
        validation_file_id=body.validation_path,
        hyperparameters=sloughgpt_hyper(settings, body.config),
        resources=sloughgpt_resources(body.resources),
    )
