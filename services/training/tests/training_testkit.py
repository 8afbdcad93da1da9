"""Test helpers of the training service (a uniquely named module): fakes for auth and billing, a
base model on disk, JSONL data, and a tiny Gemma 3 with a tokenizer built here (no download)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tollgate.common.auth_client import Principal
from tollgate.common.errors import InsufficientCredits, Unauthenticated

FACT = "The mascot of Zorblax Cola is Captain Quibble."
LINES = [
    json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"Question {i}: the mascot?"},
                {"role": "assistant", "content": FACT},
            ]
        }
    )
    for i in range(8)
]


def jsonl(lines: list[str] = LINES) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def principal(
    org: str = "org_a", *, role: str = "user", permissions: tuple[str, ...] = ("read", "write", "delete")
) -> Principal:
    return Principal(
        key_id=7,
        org_id=org,
        user_id=f"user_{org}",
        role=role,
        group_id=1,
        permissions=permissions,
        key_prefix="tg_x",
        expires_at_unix=0,
        month_quota_micros=0,
    )


class FakeAuth:
    """Keys are "key-<org>" (or "admin"); anything else is refused."""

    def __init__(self) -> None:
        self.read_only: set[str] = set()

    async def authenticate(self, api_key: str) -> Principal:
        if api_key == "admin":
            return principal("org_admin", role="admin")
        if not api_key.startswith("key-"):
            raise Unauthenticated("Incorrect API key provided.")
        org = api_key.removeprefix("key-")
        return principal(org, permissions=("read",) if org in self.read_only else ("read", "write", "delete"))


@dataclass
class FakeHolds:
    """Billing's holds: grants while `available` covers the amount, records every call."""

    available: int = 10**12
    holds: dict[str, int] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)

    async def hold(self, who: Principal, hold_id: str, amount_micros: int, model: str) -> int:
        if amount_micros > self.available:
            raise InsufficientCredits("Insufficient credits for this job's estimated cost.")
        self.holds[hold_id] = amount_micros
        return amount_micros

    async def release(self, org_id: str, hold_id: str) -> None:
        self.released.append(hold_id)


def fake_gguf(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "base.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 64)
    return path


def tiny_tokenizer() -> Any:
    """A word-level tokenizer over a small vocabulary, with Gemma's special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted(
        set(
            " ".join([FACT, "Question 0 1 2 3 4 5 6 7 : the mascot ? user model", "\n"])
            .replace(".", " . ")
            .split()
        )
    )
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
    ordered = list(dict.fromkeys([*specials, *words, ".", "?", ":", "\n"]))
    vocab = {tok: i for i, tok in enumerate(ordered)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("\n", "isolated"),
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Punctuation(),
        ]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        additional_special_tokens=["<start_of_turn>", "<end_of_turn>"],
    )
    return tok


def tiny_gemma(vocab_size: int, seed: int = 0) -> Any:
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=256,
        sliding_window=64,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=1,
        initializer_range=0.5,
    )
    return Gemma3ForCausalLM(config)
