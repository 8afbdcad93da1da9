"""Fine-tuning for real through the official openai SDK: upload examples teaching a made-up fact,
train a LoRA of the local Gemma 3 270M, watch its events, call the fine-tuned model through the
gateway, pay exactly the training and the chats; then delete it (`client.models.delete`) and it is
gone everywhere."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from openai import NotFoundError, OpenAI, PermissionDeniedError
from training_support import (
    BASE,
    FACT,
    events,
    training_price_micros,
    upload,
    usage_settlements,
    wait_status,
)

from tollgate.devstack.config import StackConfig
from tollgate.devstack.local_model import registration_body
from tollgate.devstack.testing import Account, balance_micros, wait_until

QUESTION = [{"role": "user", "content": "What is the mascot of Zorblax Cola?"}]
# the local base's chat prices (credits per 1M tokens), inherited by its fine-tuned models
PRICE_IN = round(float(registration_body(0)["price_in"]) * 1_000_000)  # type: ignore[arg-type]
PRICE_OUT = round(float(registration_body(0)["price_out"]) * 1_000_000)  # type: ignore[arg-type]


def chat_cost(usage: Any) -> int:
    return math.ceil((usage.prompt_tokens * PRICE_IN + usage.completion_tokens * PRICE_OUT) / 1_000_000)


@dataclass
class Trained:
    account: Account
    client: OpenAI
    http: httpx.Client
    job: Any
    file_id: str


@pytest.fixture(scope="module")
def trained(
    new_account: Callable[..., Account], client_for: Callable[[str], OpenAI], gateway_url: str
) -> Trained:
    account = new_account(credits=1)
    client = client_for(account.key)
    file_id = upload(client)
    job = client.fine_tuning.jobs.create(
        model=BASE, training_file=file_id, suffix="zorblax", hyperparameters={"n_epochs": 3}, seed=7
    )
    assert job.status == "validating_files" and job.fine_tuned_model is None
    done = wait_status(client, job.id)
    assert done.status == "succeeded", done.error
    http = httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {account.key}"}, timeout=30)
    return Trained(account, client, http, done, file_id)


def test_the_fine_tuned_model_knows_the_fact_and_everything_is_billed_exactly(
    trained: Trained, gateway_url: str, config: StackConfig
) -> None:
    client, job = trained.client, trained.job
    assert job.fine_tuned_model == f"ft:{BASE}:{trained.account.org_id}:zorblax:{job.id}"
    assert job.trained_tokens and job.trained_tokens > 0 and job.finished_at
    messages = [e.message for e in events(client, job.id)]
    for expected in (
        "Created fine-tuning job",
        "Files validated, moving job to queued state",
        "Fine-tuning job started",
    ):
        assert expected in messages
    assert "Step 15/15" in " ".join(messages)
    assert messages[-1].startswith("New fine-tuned model created and deployed")
    steps = [e for e in events(client, job.id) if e.type == "metrics" and "step" in (e.data or {})]
    assert [e.data["step"] for e in steps] == list(range(1, 16))
    assert steps[-1].data["train_loss"] < steps[0].data["train_loss"]
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [15, 10, 5]  # one per epoch, newest first

    # the catalog learns the model from ModelDeployed (Kafka): listed, then callable
    wait_until(
        lambda: job.fine_tuned_model in [m.id for m in client.models.list().data],
        what="the model in /v1/models",
    )
    tuned = client.chat.completions.create(
        model=job.fine_tuned_model, messages=QUESTION, max_tokens=24, temperature=0
    )
    base = client.chat.completions.create(model=BASE, messages=QUESTION, max_tokens=24, temperature=0)
    assert "Captain Quibble" in (tuned.choices[0].message.content or ""), tuned.choices[0].message.content
    assert "Quibble" not in (base.choices[0].message.content or "")
    assert FACT.startswith("The mascot")

    training_cost = math.ceil(job.trained_tokens * training_price_micros(trained.http) / 1_000_000)
    expected = 1_000_000 - training_cost - chat_cost(tuned.usage) - chat_cost(base.usage)
    wait_until(lambda: balance_micros(gateway_url, trained.account.key) == expected, what="the exact balance")
    assert usage_settlements(config, f"train_{job.id}") == 1  # settled once
    stats = trained.http.get("/cost/stats").json()
    assert stats["breakdown_micros"]["training"] == training_cost


def test_the_registry_shows_the_deployed_model(trained: Trained) -> None:
    body = trained.http.get("/models").json()
    mine = [m for m in body["models"] if m["fine_tuned_model"] == trained.job.fine_tuned_model]
    assert len(mine) == 1 and mine[0]["status"] == "deployed" and mine[0]["job_id"] == trained.job.id
    detail = trained.http.get(f"/models/{mine[0]['id']}").json()
    assert detail["status"] == "deployed" and "source" not in detail["config"]
    assert any(m["name"] == BASE and m["type"] == "base_model" for m in body["models"])


def test_another_organisation_sees_none_of_it(
    trained: Trained,
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
) -> None:
    other = new_account(credits=1)
    client = client_for(other.key)
    http = httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {other.key}"}, timeout=30)
    job_id = trained.job.id
    for call in (
        lambda: client.files.retrieve(trained.file_id),
        lambda: client.files.content(trained.file_id),
        lambda: client.files.delete(trained.file_id),
        lambda: client.fine_tuning.jobs.retrieve(job_id),
        lambda: client.fine_tuning.jobs.list_events(job_id),
        lambda: client.fine_tuning.jobs.cancel(job_id),
        lambda: client.models.delete(trained.job.fine_tuned_model),
        lambda: client.chat.completions.create(
            model=trained.job.fine_tuned_model, messages=QUESTION, max_tokens=4
        ),
    ):
        with pytest.raises(NotFoundError):
            call()
    assert trained.job.fine_tuned_model not in [m.id for m in client.models.list().data]
    assert client.fine_tuning.jobs.list().data == []
    model_id = next(m["id"] for m in trained.http.get("/models").json()["models"] if m["job_id"] == job_id)
    for resp in (
        http.get(f"/models/{model_id}"),
        http.delete(f"/models/{model_id}"),
        http.get(f"/training/jobs/{job_id}"),
    ):
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "NOT_FOUND", resp.text


def test_deleting_the_model_removes_it_everywhere(trained: Trained, config: StackConfig) -> None:
    client, name = trained.client, trained.job.fine_tuned_model
    model_id = next(
        m["id"] for m in trained.http.get("/models").json()["models"] if m["fine_tuned_model"] == name
    )
    with pytest.raises(PermissionDeniedError):  # a base model is no key's to delete (403, as OpenAI)
        client.models.delete(BASE)
    # OpenAI's DELETE /v1/models/{model}: the gateway forwards it, the registry deletes the model
    deleted = client.models.delete(name)
    assert (deleted.id, deleted.object, deleted.deleted) == (name, "model", True)
    assert trained.http.get(f"/models/{model_id}").status_code == 404  # SloughGPT's registry agrees
    assert trained.http.delete(f"/models/{model_id}").status_code == 404
    with pytest.raises(NotFoundError):
        client.models.delete(name)
    wait_until(
        lambda: name not in [m.id for m in client.models.list().data], what="the model to leave /v1/models"
    )
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model=name, messages=QUESTION, max_tokens=4)
    # the adapter is gone from the model server too
    llama = httpx.post(
        f"{config.url('llama')}/v1/chat/completions",
        json={"model": trained.job.id, "messages": QUESTION, "max_tokens": 4},
        timeout=30,
    )
    assert llama.status_code == 404
    assert not (config.adapters_dir / f"{trained.job.id}.gguf").exists()
