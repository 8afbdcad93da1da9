"""The LoRA loop on a tiny randomly initialised Gemma 3 (built from a config, no download): it
learns, stops when its reporter says so, resumes from a checkpoint exactly where an uninterrupted
run would be, and its adapter becomes a GGUF adapter that names llama.cpp's tensors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import gguf
import pytest
import torch
from peft import LoraConfig, get_peft_model
from training_testkit import LINES, jsonl, tiny_gemma, tiny_tokenizer

from tollgate.training.examples import parse_jsonl
from tollgate.training.trainer import checkpoint as checkpoints
from tollgate.training.trainer.checkpoint import LoopPosition
from tollgate.training.trainer.data import IGNORE, collate, epoch_batches, featurize
from tollgate.training.trainer.gguf_adapter import convert
from tollgate.training.trainer.loop import LoopSettings, LoraLoop, StepReport
from tollgate.training.trainer.run import LORA_TARGETS

SETTINGS = LoopSettings(epochs=8, batch_size=4, learning_rate=2e-2, seed=11)


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.steps: list[StepReport] = []
        self.checkpoints: list[LoopPosition] = []
        self.epochs: list[tuple[int, dict[str, float]]] = []
        self.stop_after = stop_after

    def step(self, report: StepReport) -> bool:
        self.steps.append(report)
        return self.stop_after is None or report.step < self.stop_after

    def checkpoint(self, position: LoopPosition, save: Callable[[], None], metrics: dict[str, float]) -> None:
        save()
        self.checkpoints.append(position)

    def epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs.append((epoch, metrics))


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return tiny_tokenizer()


def make_loop(tokenizer: object, settings: LoopSettings = SETTINGS) -> LoraLoop:
    model = tiny_gemma(len(tokenizer))  # type: ignore[arg-type]
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora)
    examples, _ = parse_jsonl(jsonl(), max_lines=100)
    features = featurize(examples, tokenizer, 64)
    return LoraLoop(peft_model, settings, features, tokenizer.pad_token_id, "cpu")  # type: ignore[attr-defined]


def test_only_the_answers_are_labelled(tokenizer: object) -> None:
    examples, _ = parse_jsonl(jsonl(LINES[:1]), max_lines=10)
    (feature,) = featurize(examples, tokenizer, 64)
    labelled = [t for t, label in zip(feature.input_ids, feature.labels, strict=True) if label != IGNORE]
    text = tokenizer.decode(labelled)  # type: ignore[attr-defined]
    assert "Captain Quibble" in text and "Question" not in text and "<end_of_turn>" in text
    assert feature.input_ids[0] == tokenizer.bos_token_id  # type: ignore[attr-defined]
    shorter = len(feature.input_ids) - 3
    (cut,) = featurize(examples, tokenizer, shorter)
    assert len(cut.input_ids) == shorter and cut.labels == feature.labels[:shorter]
    assert featurize(examples, tokenizer, 8) == []  # cut before its answer: nothing to learn


def test_the_loop_learns_and_reports_every_step(tokenizer: object, tmp_path: Path) -> None:
    loop = make_loop(tokenizer)
    recorder = Recorder()
    examples, _ = parse_jsonl(jsonl(LINES[:2]), max_lines=10)
    validation = featurize(examples, tokenizer, 64)

    def save(p: LoopPosition) -> None:
        checkpoints.save(tmp_path / f"step-{p.step}", loop.model, loop.optimizer, loop.scheduler, p)

    result = loop.run(recorder, save=save, validation=validation)
    assert result.completed and result.position.step == loop.total_steps == 16
    assert [r.step for r in recorder.steps] == list(range(1, 17))
    assert recorder.steps[-1].loss < recorder.steps[0].loss / 2
    assert result.position.trained_tokens == sum(r.tokens for r in recorder.steps)
    assert [p.step for p in recorder.checkpoints] == list(range(2, 17, 2))  # one per epoch
    assert [e for e, _ in recorder.epochs] == list(range(1, 9))
    metrics = recorder.epochs[-1][1]
    assert 0 <= metrics["valid_mean_token_accuracy"] <= 1 and metrics["valid_loss"] > 0
    assert recorder.steps[0].learning_rate > recorder.steps[-1].learning_rate  # linear decay


def test_a_stopped_run_resumed_from_its_checkpoint_ends_like_an_uninterrupted_one(
    tokenizer: object, tmp_path: Path
) -> None:
    whole = make_loop(tokenizer)
    whole_result = whole.run(Recorder())

    first = make_loop(tokenizer)
    saved: list[Path] = []

    def save(position: LoopPosition) -> None:
        path = tmp_path / f"step-{position.step}"
        checkpoints.save(path, first.model, first.optimizer, first.scheduler, position)
        saved.append(path)

    stopped = first.run(Recorder(stop_after=3), save=save)
    assert not stopped.completed and stopped.position.step == 3
    assert [p.name for p in saved] == ["step-2"]  # step 3 was trained but not checkpointed

    second = make_loop(tokenizer)  # a new process: fresh weights, fresh optimiser
    position = checkpoints.load(saved[-1], second.model, second.optimizer, second.scheduler)
    assert position.step == 2
    recorder = Recorder()
    resumed = second.run(recorder, start=position)
    assert resumed.completed and [r.step for r in recorder.steps] == list(range(3, 17))
    assert resumed.position.trained_tokens == whole_result.position.trained_tokens
    for (name, a), (_, b) in zip(
        whole.model.named_parameters(), second.model.named_parameters(), strict=True
    ):
        if a.requires_grad:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


def test_the_loop_does_the_trainers_work_per_step(tokenizer: object) -> None:
    """Same optimiser as transformers' Trainer by default (fused AdamW, no weight decay), the LoRA
    weights listed once for clipping, tokens counted without reading the device."""
    loop = make_loop(tokenizer)
    assert loop.optimizer.defaults["fused"] is True and loop.optimizer.defaults["weight_decay"] == 0.0
    assert loop.trainable and all(p.requires_grad for p in loop.trainable)
    assert len(loop.trainable) == sum(p.requires_grad for p in loop.model.parameters())
    recorder = Recorder(stop_after=1)
    loop.run(recorder)
    (step,) = recorder.steps
    first = next(epoch_batches(loop.features, loop.batch_size, SETTINGS.seed, 0))
    assert step.tokens == int(collate(first, 0)["attention_mask"].sum())


def test_checkpoints_are_pruned_to_the_newest(tmp_path: Path) -> None:
    for step in (1, 2, 10, 3):
        (tmp_path / f"step-{step}").mkdir()
    checkpoints.prune(tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-10", "step-3"]


def test_the_adapter_becomes_a_gguf_lora_adapter(tokenizer: object, tmp_path: Path) -> None:
    loop = make_loop(tokenizer)
    loop.run(Recorder())
    loop.model.save_pretrained(str(tmp_path / "adapter"))
    config = loop.model.base_model.model.config.to_dict()
    out = convert(tmp_path / "adapter", config, tmp_path / "ftjob-x.gguf")
    reader = gguf.GGUFReader(str(out))
    fields = {name: f for name, f in reader.fields.items()}
    assert bytes(fields["general.type"].parts[-1]).decode() == "adapter"
    assert bytes(fields["adapter.type"].parts[-1]).decode() == "lora"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 8.0
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == 2 * 2 * len(LORA_TARGETS)  # 2 layers, A and B of each target
    q_a, q_b = tensors["blk.0.attn_q.weight.lora_a"], tensors["blk.0.attn_q.weight.lora_b"]
    # ggml lists dimensions innermost first: A is (rank x hidden), B is (q out x rank)
    assert list(q_a.shape) == [32, 4] and list(q_b.shape) == [4, 2 * 16]
    assert "blk.1.ffn_down.weight.lora_a" in tensors
    weights = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert weights["r"] == 4
