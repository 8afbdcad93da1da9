"""Training examples: both formats parsed, each problem named with its line, the chat rendered the
way the model server formats it, and the cost estimate an upper bound of the tokens trained."""

from __future__ import annotations

import json

import pytest
from training_testkit import LINES, jsonl, tiny_tokenizer

from tollgate.training.examples import (
    CHAT,
    PROMPT_COMPLETION,
    ExampleError,
    estimate_tokens,
    parse_jsonl,
    parse_objects,
    render,
)
from tollgate.training.trainer.data import featurize


def test_both_formats_parse() -> None:
    chat, fmt = parse_jsonl(jsonl(LINES[:2]), max_lines=10)
    assert fmt == CHAT and len(chat) == 2
    pairs, fmt = parse_objects(enumerate([{"prompt": "Q", "completion": "A"}], start=1))
    assert fmt == PROMPT_COMPLETION and [t.role for t in pairs[0].turns] == ["user", "assistant"]


def test_system_turns_are_dropped_and_weight_zero_answers_are_context() -> None:
    line = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Old answer", "weight": 0},
            {"role": "user", "content": "Again"},
            {"role": "assistant", "content": "New answer"},
        ]
    }
    (example,), _ = parse_jsonl(json.dumps(line).encode(), max_lines=10)
    segments = render(example)
    assert "".join(text for text, _ in segments) == (
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nOld answer<end_of_turn>\n"
        "<start_of_turn>user\nAgain<end_of_turn>\n<start_of_turn>model\nNew answer<end_of_turn>\n"
    )
    assert [text for text, trained in segments if trained] == ["New answer<end_of_turn>\n"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[]", "JSON object"),
        ('{"messages": []}', "non-empty list"),
        ('{"messages": [{"role": "user", "content": "x"}]}', "assistant"),
        ('{"messages": [{"role": "assistant", "content": "x", "weight": 2}]}', "weight"),
        ('{"messages": [{"role": "user", "content": 5}]}', "content"),
        ('{"text": "x"}', "expected"),
    ],
)
def test_problems_are_named_with_their_line(line: str, problem: str) -> None:
    with pytest.raises(ExampleError) as err:
        parse_jsonl(jsonl([LINES[0], line]), max_lines=10)
    assert err.value.line == 2 and problem in str(err.value)


def test_too_many_lines() -> None:
    with pytest.raises(ExampleError, match="more than 3 lines"):
        parse_jsonl(jsonl(LINES[:4]), max_lines=3)


def test_the_estimate_bounds_the_tokens_trained() -> None:
    tokenizer = tiny_tokenizer()
    examples, _ = parse_jsonl(jsonl(), max_lines=100)
    for cap in (8, 16, 64):
        features = featurize(examples, tokenizer, cap)
        assert sum(len(f.input_ids) for f in features) <= sum(estimate_tokens(e, cap) for e in examples)
