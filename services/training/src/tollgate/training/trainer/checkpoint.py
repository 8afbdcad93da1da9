"""A checkpoint: the LoRA weights (PEFT's format), the optimiser and scheduler states and where the
loop was, so a job picked up by another worker continues from it instead of starting over."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file

STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass(frozen=True, slots=True)
class LoopPosition:
    step: int  # optimiser steps done
    epoch: int  # 1-based epoch of the last step
    trained_tokens: int
    loss: float | None = None


def save(path: Path, model: PeftModel, optimizer: Any, scheduler: Any, position: LoopPosition) -> None:
    """Written to a temporary folder and renamed: a checkpoint is whole or absent."""
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, partial / OPTIMIZER_FILE
    )
    (partial / STATE_FILE).write_text(json.dumps(asdict(position)))
    shutil.rmtree(path, ignore_errors=True)
    partial.rename(path)


def load(path: Path, model: PeftModel, optimizer: Any, scheduler: Any) -> LoopPosition:
    weights = load_file(str(path / "adapter_model.safetensors"))
    set_peft_model_state_dict(model, weights)
    states = torch.load(path / OPTIMIZER_FILE, weights_only=True)
    optimizer.load_state_dict(states["optimizer"])
    scheduler.load_state_dict(states["scheduler"])
    return LoopPosition(**json.loads((path / STATE_FILE).read_text()))


def prune(folder: Path, keep: int) -> None:
    """Keeps the newest `keep` checkpoints (folders named step-<n>)."""
    found = sorted(
        (p for p in folder.glob("step-*") if p.is_dir() and p.name[5:].isdigit()),
        key=lambda p: int(p.name[5:]),
    )
    for old in found[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
