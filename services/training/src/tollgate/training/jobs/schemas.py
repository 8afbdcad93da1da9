"""Request bodies of the two job surfaces: OpenAI fine-tuning and SloughGPT training/fine-tuning."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Auto = Literal["auto"]


class OpenAIHyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_epochs: Auto | int = Field(default="auto")
    batch_size: Auto | int = Field(default="auto")
    learning_rate_multiplier: Auto | float = Field(default="auto")


class SupervisedMethod(BaseModel):
    hyperparameters: OpenAIHyperparameters = Field(default_factory=OpenAIHyperparameters)


class Method(BaseModel):
    type: Literal["supervised"] = "supervised"
    supervised: SupervisedMethod | None = None


class OpenAIJobCreate(BaseModel):
    model: str = Field(min_length=1, max_length=200)
    training_file: str = Field(min_length=1, max_length=64)
    validation_file: str | None = Field(default=None, max_length=64)
    hyperparameters: OpenAIHyperparameters | None = None
    method: Method | None = None
    suffix: str | None = Field(default=None, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    integrations: list[Any] | None = None


class SloughGPTTrainingConfig(BaseModel):
    """SloughGPT's `config` (epochs also as `epochs`, as its SDK example sends)."""

    batch_size: int | None = Field(default=None, ge=1, le=256)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    num_epochs: int | None = Field(default=None, ge=1, le=50)
    epochs: int | None = Field(default=None, ge=1, le=50)
    warmup_steps: int | None = Field(default=None, ge=0, le=100_000)
    save_steps: int | None = Field(default=None, ge=0, le=1_000_000)


class SloughGPTResources(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu_type: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    gpu_count: int = Field(default=0, ge=0, le=16)
    cpu_cores: float = Field(default=0, ge=0, le=256)
    memory_gb: float = Field(default=0, ge=0, le=2048)


class SloughGPTTrainingJobCreate(BaseModel):
    model_id: str = Field(min_length=1, max_length=200)
    dataset_path: str = Field(min_length=1, max_length=64)  # a file id from POST /v1/files
    validation_path: str | None = Field(default=None, max_length=64)
    config: SloughGPTTrainingConfig = Field(default_factory=SloughGPTTrainingConfig)
    resources: SloughGPTResources = Field(default_factory=SloughGPTResources)


class LoraHyperparameters(BaseModel):
    lora_r: int | None = Field(default=None, ge=1, le=256)
    lora_alpha: int | None = Field(default=None, ge=1, le=1024)
    lora_dropout: float | None = Field(default=None, ge=0, lt=1)


class SloughGPTFineTuningJobCreate(BaseModel):
    base_model_id: str = Field(min_length=1, max_length=200)
    training_data: list[Any] = Field(min_length=1)
    config: SloughGPTTrainingConfig = Field(default_factory=SloughGPTTrainingConfig)
    hyperparameters: LoraHyperparameters = Field(default_factory=LoraHyperparameters)
    resources: SloughGPTResources = Field(default_factory=SloughGPTResources)
    suffix: str | None = Field(default=None, max_length=64)
