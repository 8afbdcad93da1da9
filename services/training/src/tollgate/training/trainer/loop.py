"""The LoRA training loop: AdamW with linear warm-up and decay, one optimiser step per batch,
progress reported after every step (the reporter may stop the loop: cancelled, lease lost),
checkpoints every `save_steps` (or every epoch), validation loss and token accuracy per epoch.

It knows nothing of jobs, databases or Kafka: the job process passes a reporter that does, the
unit tests a recording one, the benchmark none at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import get_scheduler

from tollgate.training.trainer.checkpoint import LoopPosition
from tollgate.training.trainer.data import IGNORE, Feature, collate, epoch_batches, steps_per_epoch


@dataclass(frozen=True, slots=True)
class LoopSettings:
    epochs: int
    batch_size: int
    learning_rate: float
    warmup_steps: int = 0
    save_steps: int = 0  # 0: every epoch
    seed: int = 0
    max_grad_norm: float = 1.0


@dataclass(frozen=True, slots=True)
class StepReport:
    step: int
    total_steps: int
    epoch: int
    loss: float
    learning_rate: float
    tokens: int  # tokens of this step's batch
    trained_tokens: int
    tokens_per_second: float
    seconds: float


class Reporter(Protocol):
    def step(self, report: StepReport) -> bool:
        """After each step; False stops the loop (the step counts, nothing more is trained)."""
        ...

    def checkpoint(
        self, position: LoopPosition, save: Callable[[], None], metrics: dict[str, float]
    ) -> None: ...

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


def adamw(params: list[torch.nn.Parameter], learning_rate: float) -> torch.optim.AdamW:
    """AdamW without weight decay, fused (one kernel over every tensor) where torch has it for these
    parameters, as transformers' Trainer does by default (`adamw_torch_fused`, torch >= 2.8): the
    per-tensor loop it replaces ran ~10 small ops for each of the ~250 LoRA tensors every step."""
    try:
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0, fused=True)
    except (RuntimeError, ValueError):  # an older torch, or a device or dtype without the kernel
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=0.0)


@dataclass(frozen=True, slots=True)
class LoopResult:
    completed: bool
    position: LoopPosition


class LoraLoop:
    def __init__(
        self, model: Any, settings: LoopSettings, features: Sequence[Feature], pad_id: int, device: str
    ) -> None:
        if not features:
            raise ValueError("nothing to train: no example has a trainable answer within the sequence length")
        self.model = model
        self.settings = settings
        self.features = features
        self.pad_id = pad_id
        self.device = device
        self.batch_size = max(1, min(settings.batch_size, len(features)))
        self.per_epoch = steps_per_epoch(len(features), self.batch_size)
        self.total_steps = self.per_epoch * settings.epochs
        # the LoRA weights, listed once: clipping walks them every step
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = adamw(self.trainable, settings.learning_rate)
        self.scheduler = get_scheduler(
            "linear",
            self.optimizer,
            num_warmup_steps=settings.warmup_steps,
            num_training_steps=self.total_steps,
        )

    def _checkpoint_due(self, step: int) -> bool:
        every = self.settings.save_steps or self.per_epoch
        return step % every == 0 or step == self.total_steps

    def run(
        self,
        reporter: Reporter,
        start: LoopPosition | None = None,
        save: Callable[[LoopPosition], None] | None = None,
        validation: Sequence[Feature] = (),
    ) -> LoopResult:
        position = start or LoopPosition(step=0, epoch=0, trained_tokens=0)
        torch.manual_seed(self.settings.seed + position.step)
        self.model.train()
        for epoch in range(position.step // self.per_epoch, self.settings.epochs):
            skip = position.step - epoch * self.per_epoch if position.step > epoch * self.per_epoch else 0
            for index, batch in enumerate(
                epoch_batches(self.features, self.batch_size, self.settings.seed, epoch)
            ):
                if index < skip:
                    continue
                position, keep_going = self._step(batch, position, epoch + 1, reporter)
                if self._checkpoint_due(position.step) and save is not None:
                    metrics = {"train_loss": position.loss or 0.0}
                    at = position
                    reporter.checkpoint(at, lambda at=at: save(at), metrics)
                if not keep_going:
                    return LoopResult(False, position)
            metrics = self.evaluate(validation) if validation else {}
            reporter.epoch_end(epoch + 1, metrics)
            self.model.train()
        return LoopResult(True, position)

    def _step(
        self, batch: list[Feature], position: LoopPosition, epoch: int, reporter: Reporter
    ) -> tuple[LoopPosition, bool]:
        began = time.perf_counter()
        # counted from the examples, not from the mask on the device (a GPU would sync for it)
        tokens = sum(len(f.input_ids) for f in batch)
        inputs = {k: v.to(self.device) for k, v in collate(batch, self.pad_id).items()}
        loss = self.model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.trainable, self.settings.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        # the one read of a device value per step: the step's loss goes into its progress event
        value = float(loss.detach())
        seconds = time.perf_counter() - began
        step = position.step + 1
        position = LoopPosition(
            step=step, epoch=epoch, trained_tokens=position.trained_tokens + tokens, loss=value
        )
        report = StepReport(
            step=step,
            total_steps=self.total_steps,
            epoch=epoch,
            loss=value,
            learning_rate=float(self.scheduler.get_last_lr()[0]),
            tokens=tokens,
            trained_tokens=position.trained_tokens,
            tokens_per_second=tokens / seconds if seconds > 0 else 0.0,
            seconds=seconds,
        )
        return position, reporter.step(report)

    @torch.no_grad()
    def evaluate(self, features: Sequence[Feature]) -> dict[str, float]:
        """Validation loss (mean over answer tokens) and token accuracy of greedy predictions."""
        self.model.eval()
        loss_sum, correct, counted = 0.0, 0, 0
        for start in range(0, len(features), self.batch_size):
            inputs = {
                k: v.to(self.device)
                for k, v in collate(features[start : start + self.batch_size], self.pad_id).items()
            }
            logits = self.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
            predicted, target = logits[:, :-1].float(), inputs["labels"][:, 1:]
            mask = target != IGNORE
            token_loss = torch.nn.functional.cross_entropy(
                predicted.transpose(1, 2), target, ignore_index=IGNORE, reduction="sum"
            )
            loss_sum += float(token_loss)
            correct += int(((predicted.argmax(-1) == target) & mask).sum())
            counted += int(mask.sum())
        if counted == 0:
            return {}
        loss = loss_sum / counted
        return {
            "valid_loss": loss,
            "valid_mean_token_accuracy": correct / counted,
            "valid_perplexity": math.exp(min(loss, 50.0)),
        }
