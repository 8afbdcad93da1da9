"""Refusals before anything is stored or computed: a bad JSONL line (400 naming the line), an
unaffordable job (402), bad SloughGPT bodies in its envelope."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import httpx
import pytest
from openai import APIStatusError, BadRequestError, OpenAI
from training_support import BASE, CHAT_LINES, jsonl, training_rows, upload

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import Account


def test_an_invalid_line_is_refused_with_its_number_and_nothing_is_stored(
    new_account: Callable[..., Account], client_for: Callable[[str], OpenAI], config: StackConfig
) -> None:
    account = new_account()
    client = client_for(account.key)
    lines = [*CHAT_LINES[:2], '{"messages": [{"role": "user", "content": "no answer"}]}', *CHAT_LINES[2:4]]
    with pytest.raises(BadRequestError) as refused:
        client.files.create(file=("bad.jsonl", io.BytesIO(jsonl(lines))), purpose="fine-tune")
    error = refused.value.body
    assert isinstance(error, dict)
    assert "line 3" in error["message"] and "assistant" in error["message"], error
    assert error["code"] == "invalid_file" and error["param"] == "file"
    with pytest.raises(BadRequestError, match="line 2: invalid JSON"):
        client.files.create(
            file=("bad.jsonl", io.BytesIO(b'{"prompt": "a", "completion": "b"}\n{oops\n')),
            purpose="fine-tune",
        )
    with pytest.raises(BadRequestError, match="purpose"):
        client.files.create(file=("a.jsonl", io.BytesIO(jsonl(CHAT_LINES))), purpose="assistants")  # type: ignore[arg-type]
    assert client.files.list().data == []
    assert training_rows(config, "training_files", account.org_id) == 0


def test_an_unaffordable_job_is_refused_with_402_before_any_compute(
    new_account: Callable[..., Account], client_for: Callable[[str], OpenAI], config: StackConfig
) -> None:
    account = new_account(credits=0.000001)  # one micro-credit: far below the estimated cost
    client = client_for(account.key)
    file_id = upload(client)
    with pytest.raises(APIStatusError) as refused:
        client.fine_tuning.jobs.create(model=BASE, training_file=file_id)
    assert refused.value.status_code == 402
    body = refused.value.body
    assert isinstance(body, dict) and body["code"] == "insufficient_credits", body
    assert client.fine_tuning.jobs.list().data == []
    assert training_rows(config, "training_jobs", account.org_id) == 0
    # the file stays (it was valid) and is not in use
    assert client.files.delete(file_id).deleted


def test_sloughgpt_bodies_are_checked_in_its_envelope(
    new_account: Callable[..., Account], gateway_url: str, config: StackConfig
) -> None:
    account = new_account(credits=1)
    http = httpx.Client(base_url=gateway_url, headers={"X-API-Key": account.key}, timeout=30)
    bad_item = http.post(
        "/fine-tuning/jobs",
        json={"base_model_id": BASE, "training_data": [{"prompt": "Q", "completion": "A"}, {"prompt": "Q"}]},
    )
    assert bad_item.status_code == 400, bad_item.text
    error = bad_item.json()["error"]
    assert error["code"] == "INVALID_PARAMETER" and error["details"]["line"] == 2
    assert error["details"]["parameter"] == "training_data[1]" and error["request_id"].startswith("req_")
    unknown = http.post("/training/jobs", json={"model_id": "no-such-model", "dataset_path": "file-x"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"
    bad_config = http.post(
        "/training/jobs", json={"model_id": BASE, "dataset_path": "file-x", "config": {"num_epochs": 0}}
    )
    assert bad_config.status_code == 400 and bad_config.json()["error"]["code"] == "INVALID_PARAMETER"
    bad_model = http.post("/models", json={"name": "mine", "config": {"base_model": "nope"}})
    assert (
        bad_model.status_code == 400
        and bad_model.json()["error"]["details"]["parameter"] == "config.base_model"
    )
    base = http.post(
        "/models", json={"name": "evil-base", "type": "base_model", "config": {"source": "/etc/passwd"}}
    )
    assert base.status_code == 403 and base.json()["error"]["code"] == "FORBIDDEN"
    assert training_rows(config, "training_jobs", account.org_id) == 0
    assert training_rows(config, "training_files", account.org_id) == 0
    assert json.loads(http.get("/fine-tuning/jobs").text)["jobs"] == []
