"""Examples to tensors: the chat format rendered and tokenized, only trainable answers labelled,
truncated to the job's sequence length; epochs in a seeded order, batches padded to their longest."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from tollgate.training.examples import Example, render

IGNORE = -100  # label of tokens the loss skips (prompt, padding)


@dataclass(frozen=True, slots=True)
class Feature:
    input_ids: list[int]
    labels: list[int]


def featurize(
    examples: Sequence[Example], tokenizer: Any, max_seq_len: int, chat_format: str = "gemma"
) -> list[Feature]:
    bos = tokenizer.bos_token_id
    out = []
    for example in examples:
        ids: list[int] = [] if bos is None else [bos]
        labels: list[int] = [IGNORE] * len(ids)
        for text, trained in render(example, chat_format):
            piece = tokenizer(text, add_special_tokens=False)["input_ids"]
            ids.extend(piece)
            labels.extend(piece if trained else [IGNORE] * len(piece))
        ids, labels = ids[:max_seq_len], labels[:max_seq_len]
        if any(label != IGNORE for label in labels[1:]):  # truncation may leave nothing to learn
            out.append(Feature(ids, labels))
    return out


def collate(batch: Sequence[Feature], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(f.input_ids) for f in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, f in enumerate(batch):
        n = len(f.input_ids)
        ids[row, :n] = torch.tensor(f.input_ids)
        labels[row, :n] = torch.tensor(f.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def steps_per_epoch(n_features: int, batch_size: int) -> int:
    return -(-n_features // batch_size)


def epoch_batches(
    features: Sequence[Feature], batch_size: int, seed: int, epoch: int
) -> Iterator[list[Feature]]:
    """The batches of one (0-based) epoch: a permutation fixed by (seed, epoch), so a resumed job
    sees the same order and can skip the batches it already trained."""
    generator = torch.Generator().manual_seed(seed * 1009 + epoch)
    order = torch.randperm(len(features), generator=generator).tolist()
    for start in range(0, len(order), batch_size):
        yield [features[i] for i in order[start : start + batch_size]]
