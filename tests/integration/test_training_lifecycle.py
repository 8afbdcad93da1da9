"""SloughGPT's training and fine-tuning routes in their shapes, stop and cancel mid-run (settled for
what was trained), a file in use refused, and a worker killed with SIGKILL mid-job (resumed from
its checkpoint by the restarted worker, billed once for the tokens that count)."""

from __future__ import annotations

import math
from collections.abc import Callable

import httpx
import pytest
from openai import OpenAI
from training_support import (
    BASE,
    QUESTIONS,
    events,
    tokens_at_step,
    training_price_micros,
    upload,
    usage_settlements,
    wait_status,
    wait_step,
)

from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import Account, balance_micros, wait_until

# SloughGPT's GET /training/jobs/{id} fields
SEED_JOB_KEYS = {"id", "status", "progress", "current_epoch", "total_epochs", "metrics", "resources_used"}


def http_for(gateway_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=gateway_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_seed_training_job_stopped_mid_run_is_settled_for_what_it_trained(
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    client, http = client_for(account.key), http_for(gateway_url, account.key)
    file_id = upload(client)
    model = http.post(
        "/models", json={"name": "zorblax-bot", "config": {"base_model": BASE}, "description": "mine"}
    )
    assert model.status_code == 201 and model.json()["status"] == "registered", model.text
    model_id = model.json()["id"]
    created = http.post(
        "/training/jobs",
        json={
            "model_id": model_id,
            "dataset_path": file_id,
            "config": {
                "batch_size": 4,
                "learning_rate": 1e-3,
                "num_epochs": 10,
                "warmup_steps": 2,
                "save_steps": 5,
            },
            "resources": {"cpu_cores": 2, "memory_gb": 4},
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert set(job) >= SEED_JOB_KEYS and job["status"] == "queued" and job["total_epochs"] == 10
    assert job["model_id"] == model_id and job["resources"] == {"cpu_cores": 2.0, "memory_gb": 4.0}

    wait_step(client, job["id"], 2)
    running = http.get(f"/training/jobs/{job['id']}").json()
    assert running["status"] == "training" and 0 < running["progress"] < 1
    assert running["metrics"]["loss"] > 0 and running["metrics"]["perplexity"] > 1
    assert running["resources_used"]["cpu_hours"] > 0 and running["estimated_completion"]
    # the training file is in use: deleting it is refused
    in_use = http.delete(f"/v1/files/{file_id}")
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "file_in_use"
    assert http.get("/models/" + model_id).json()["status"] == "training"

    stopped = http.post(f"/training/jobs/{job['id']}/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    done = wait_status(client, job["id"], timeout=60)  # the process stops within a step
    assert done.status == "cancelled" and done.finished_at and done.trained_tokens > 0
    assert "The job has been cancelled" in [e.message for e in events(client, job["id"])]
    steps = max(
        e.data["step"] for e in events(client, job["id"]) if e.type == "metrics" and "step" in (e.data or {})
    )
    assert done.trained_tokens == tokens_at_step(client, job["id"], steps) and steps < 50
    cost = math.ceil(done.trained_tokens * training_price_micros(http) / 1_000_000)
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - cost, what="the stopped job's charge"
    )
    assert usage_settlements(config, f"train_{job['id']}") == 1
    assert http.get("/models/" + model_id).json()["status"] == "cancelled"
    assert http.delete(f"/v1/files/{file_id}").status_code == 200  # no longer in use


def test_seed_fine_tuning_job_with_inline_data_and_openai_cancel(
    new_account: Callable[..., Account], client_for: Callable[[str], OpenAI], gateway_url: str
) -> None:
    account = new_account(credits=1)
    client, http = client_for(account.key), http_for(gateway_url, account.key)
    data = [{"prompt": q, "completion": "Captain Quibble."} for q in QUESTIONS] * 2
    created = http.post(
        "/fine-tuning/jobs",
        json={
            "base_model_id": BASE,
            "training_data": data,
            "config": {"batch_size": 2, "learning_rate": 5e-4, "num_epochs": 20},
            "hyperparameters": {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.1},
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert set(job) >= SEED_JOB_KEYS
    assert job["hyperparameters"] == {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.1}
    assert job["config"]["batch_size"] == 2 and job["config"]["num_epochs"] == 20
    assert client.files.retrieve(job["training_file"]).bytes > 0
    assert http.get(f"/fine-tuning/jobs/{job['id']}").json()["id"] == job["id"]
    listed = http.get("/fine-tuning/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [job["id"]]

    wait_step(client, job["id"], 1)
    cancelled = client.fine_tuning.jobs.cancel(job["id"])
    assert cancelled.status == "cancelled"
    done = wait_status(client, job["id"], timeout=60)
    assert done.status == "cancelled" and done.trained_tokens is not None
    assert http.get(f"/fine-tuning/jobs/{job['id']}").json()["status"] == "stopped"
    again = http.post(f"/fine-tuning/jobs/{job['id']}/stop")
    assert again.status_code == 409 and again.json()["error"]["code"] == "CONFLICT"


def test_a_worker_killed_mid_job_is_resumed_from_its_checkpoint(
    stack: Stack,
    new_account: Callable[..., Account],
    client_for: Callable[[str], OpenAI],
    gateway_url: str,
    config: StackConfig,
) -> None:
    account = new_account(credits=1)
    client, http = client_for(account.key), http_for(gateway_url, account.key)
    file_id = upload(client)
    created = http.post(
        "/training/jobs",
        json={"model_id": BASE, "dataset_path": file_id, "config": {"num_epochs": 3, "save_steps": 3}},
    )
    assert created.status_code == 201, created.text
    job_id = created.json()["id"]
    wait_step(client, job_id, 4)  # past the checkpoint at step 3
    try:
        stack.stop_service("training_worker", kill=True)
    finally:
        stack.start_service("training_worker")
    done = wait_status(client, job_id)
    assert done.status == "succeeded", done.error
    messages = [e.message for e in events(client, job_id)]
    resumed = [m for m in messages if m.startswith("Resumed from the checkpoint at step")]
    assert resumed and "attempt 2" in resumed[0], messages
    # every token of the three epochs counted once: what the checkpoint had plus what came after
    assert done.trained_tokens == 3 * tokens_at_step(client, job_id, 5)
    cost = math.ceil(done.trained_tokens * training_price_micros(http) / 1_000_000)
    wait_until(
        lambda: balance_micros(gateway_url, account.key) == 1_000_000 - cost, what="one charge for the job"
    )
    assert usage_settlements(config, f"train_{job_id}") == 1
    assert http.get(f"/training/jobs/{job_id}").json()["status"] == "completed"


@pytest.fixture(autouse=True)
def _worker_up(stack: Stack) -> None:
    """A test that fails while the worker is down must not leave it down for the next ones."""
    stack.start_service("training_worker")
