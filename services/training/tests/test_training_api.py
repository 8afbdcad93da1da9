"""The training API on a real scratch database, with fakes for auth and billing: files validated
line by line, jobs held for their estimated cost before they exist, cancel settles a waiting job
at once, organisations see only their own, SloughGPT's shapes and envelopes."""

from __future__ import annotations

import httpx
import pytest
from training_api_testkit import Api, upload
from training_testkit import LINES, jsonl

from tollgate.contracts.v1 import events_pb2, training_pb2
from tollgate.training.files.models import TrainingFile
from tollgate.training.jobs.models import Job


async def test_a_valid_file_is_stored_and_served_back(api: Api) -> None:
    resp = await upload(api)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["object"] == "file" and body["purpose"] == "fine-tune" and body["bytes"] == len(jsonl())
    assert body["status"] == "processed" and body["filename"] == "train.jsonl"
    content = await api.client.get(f"/v1/files/{body['id']}/content", headers=api.as_org("a"))
    assert content.content == jsonl()
    listed = (await api.client.get("/v1/files", headers=api.as_org("a"))).json()
    assert [f["id"] for f in listed["data"]] == [body["id"]] and listed["has_more"] is False
    deleted = await api.client.delete(f"/v1/files/{body['id']}", headers=api.as_org("a"))
    assert deleted.json() == {"id": body["id"], "object": "file", "deleted": True}
    assert (await api.client.get(f"/v1/files/{body['id']}", headers=api.as_org("a"))).status_code == 404
    assert not list((api.data_dir / "files").rglob("*.jsonl"))


@pytest.mark.parametrize(
    ("data", "line", "problem"),
    [
        (jsonl([LINES[0], "{not json"]), 2, "invalid JSON"),
        (jsonl([LINES[0], "", LINES[1]]), 2, "empty line"),
        (jsonl([LINES[0], '{"messages": [{"role": "robot", "content": "x"}]}']), 2, "role"),
        (jsonl(['{"prompt": "a", "completion": "b"}', LINES[0]]), 2, "mixes formats"),
        (jsonl(['{"prompt": "a", "completion": ""}']), 1, "completion"),
        (b'{"prompt": "a", "completion": "b"}\n\xff\n', 2, "UTF-8"),
        (b"", 1, "no examples"),
    ],
)
async def test_a_bad_line_is_a_400_naming_it_and_nothing_is_stored(
    api: Api, data: bytes, line: int, problem: str
) -> None:
    resp = await upload(api, data=data)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert f"line {line}:" in error["message"] and problem in error["message"]
    assert error["type"] == "invalid_request_error" and error["param"] == "file"
    assert await api.count(TrainingFile) == 0
    assert not (api.data_dir / "files").exists() or not list((api.data_dir / "files").rglob("*"))


async def test_limits_and_permissions(api: Api) -> None:
    too_big = await upload(api, data=b"x" * (64 * 1024 + 1))
    assert too_big.status_code == 413
    api.auth.read_only.add("r")
    refused = await upload(api, org="r")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    anonymous = await api.client.get("/v1/files")
    assert anonymous.status_code == 401


async def create_job(api: Api, org: str = "a", **extra: object) -> httpx.Response:
    file_id = (await upload(api, org)).json()["id"]
    body = {"model": "tiny-base", "training_file": file_id, **extra}
    return await api.client.post("/v1/fine_tuning/jobs", headers=api.as_org(org), json=body)


async def test_a_job_is_held_for_its_estimated_cost_and_queued(api: Api) -> None:
    resp = await create_job(
        api, suffix="bot", hyperparameters={"n_epochs": 2, "batch_size": 2}, metadata={"k": "v"}
    )
    assert resp.status_code == 200, resp.text
    job = resp.json()
    assert (
        job["object"] == "fine_tuning.job"
        and job["status"] == "validating_files"
        and job["model"] == "tiny-base"
    )
    assert job["hyperparameters"] == {"n_epochs": 2, "batch_size": 2, "learning_rate_multiplier": 1.0}
    assert (
        job["fine_tuned_model"] is None
        and job["metadata"] == {"k": "v"}
        and job["user_provided_suffix"] == "bot"
    )
    async with api.sessions() as session:
        row = await session.get(Job, job["id"])
    assert row is not None and row.fine_tuned_model == f"ft:tiny-base:a:bot:{job['id']}"
    # the estimate is an upper bound per example (UTF-8 bytes + 1, capped at the sequence length)
    assert row.estimated_tokens == 2 * 8 * 64
    assert api.holds.holds == {f"train_{job['id']}": -(-row.estimated_tokens * 2_000_000 // 1_000_000)}
    assert row.hold_micros == api.holds.holds[row.hold_id]
    events = (
        await api.client.get(f"/v1/fine_tuning/jobs/{job['id']}/events", headers=api.as_org("a"))
    ).json()
    assert [e["message"] for e in events["data"]] == ["Created fine-tuning job"]


async def test_an_unaffordable_job_is_402_and_nothing_exists(api: Api) -> None:
    api.holds.available = 10
    resp = await create_job(api)
    assert resp.status_code == 402 and resp.json()["error"]["code"] == "insufficient_credits"
    assert await api.count(Job) == 0
    listed = (await api.client.get("/v1/fine_tuning/jobs", headers=api.as_org("a"))).json()
    assert listed == {"object": "list", "data": [], "has_more": False}


async def test_cancelling_a_waiting_job_settles_it_once_with_nothing_trained(api: Api) -> None:
    job = (await create_job(api)).json()
    file_id = job["training_file"]
    in_use = await api.client.delete(f"/v1/files/{file_id}", headers=api.as_org("a"))
    assert in_use.status_code == 409 and in_use.json()["error"]["code"] == "file_in_use"
    cancelled = await api.client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=api.as_org("a"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["trained_tokens"] == 0 and cancelled.json()["finished_at"]
    records = await api.outbox()
    assert [r.event_type for r in records] == ["TrainingCompleted", "UsageRecorded"]
    usage = events_pb2.UsageRecorded.FromString(records[1].payload)
    assert (usage.event_id, usage.hold_id, usage.cost_micros) == (
        f"train_{job['id']}",
        f"train_{job['id']}",
        0,
    )
    assert usage.operation == "fine_tuning" and usage.org_id == "a" and records[1].topic == "usage.v1"
    completed = training_pb2.TrainingCompleted.FromString(records[0].payload)
    assert completed.status == "cancelled" and records[0].headers["event-type"] == "TrainingCompleted"
    again = await api.client.post(f"/v1/fine_tuning/jobs/{job['id']}/cancel", headers=api.as_org("a"))
    assert again.status_code == 409
    assert len(await api.outbox()) == 2  # settled once
    assert (await api.client.delete(f"/v1/files/{file_id}", headers=api.as_org("a"))).status_code == 200


async def test_other_organisations_get_404(api: Api) -> None:
    job = (await create_job(api)).json()
    model_id = (await api.client.get("/models", headers=api.as_org("a"))).json()["models"][-1]["id"]
    other = api.as_org("b")
    for method, path in [
        ("GET", f"/v1/files/{job['training_file']}"),
        ("GET", f"/v1/files/{job['training_file']}/content"),
        ("DELETE", f"/v1/files/{job['training_file']}"),
        ("GET", f"/v1/fine_tuning/jobs/{job['id']}"),
        ("POST", f"/v1/fine_tuning/jobs/{job['id']}/cancel"),
        ("GET", f"/v1/fine_tuning/jobs/{job['id']}/events"),
        ("GET", f"/v1/fine_tuning/jobs/{job['id']}/checkpoints"),
        ("GET", f"/training/jobs/{job['id']}"),
        ("POST", f"/training/jobs/{job['id']}/stop"),
        ("GET", f"/models/{model_id}"),
        ("DELETE", f"/models/{model_id}"),
    ]:
        resp = await api.client.request(method, path, headers=other)
        assert resp.status_code == 404, (method, path, resp.text)
    seed = await api.client.get(f"/training/jobs/{job['id']}", headers=other)
    assert seed.json()["error"]["code"] == "NOT_FOUND" and seed.json()["error"]["request_id"]
    refused = await api.client.post(
        "/v1/fine_tuning/jobs",
        headers=other,
        json={"model": "tiny-base", "training_file": job["training_file"]},
    )
    assert refused.status_code == 404 and refused.json()["error"]["param"] == "training_file"


async def test_sloughgpt_routes_answer_in_their_shapes(api: Api) -> None:
    file_id = (await upload(api)).json()["id"]
    created = await api.client.post(
        "/training/jobs",
        headers=api.as_org("a"),
        json={
            "model_id": "tiny-base",
            "dataset_path": file_id,
            "config": {
                "batch_size": 2,
                "learning_rate": 5e-4,
                "num_epochs": 4,
                "warmup_steps": 1,
                "save_steps": 3,
            },
            "resources": {"gpu_type": "A100", "gpu_count": 1, "cpu_cores": 4, "memory_gb": 16},
        },
    )
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["status"] == "queued" and job["progress"] == 0 and job["total_epochs"] == 4
    assert job["metrics"] == {} and job["resources_used"]["gpu_hours"] == 0
    assert job["config"] == {
        "batch_size": 2,
        "learning_rate": 5e-4,
        "num_epochs": 4,
        "warmup_steps": 1,
        "save_steps": 3,
    }
    assert job["resources"] == {"gpu_type": "A100", "gpu_count": 1, "cpu_cores": 4.0, "memory_gb": 16.0}
    stopped = await api.client.post(f"/training/jobs/{job['id']}/stop", headers=api.as_org("a"))
    assert stopped.json()["status"] == "stopped"
    inline = await api.client.post(
        "/fine-tuning/jobs",
        headers=api.as_org("a"),
        json={
            "base_model_id": "tiny-base",
            "training_data": [
                {"prompt": "Question", "completion": "Answer"},
                {"prompt": "Input", "completion": "Output"},
            ],
            "config": {"batch_size": 8, "learning_rate": 5e-5, "num_epochs": 3},
            "hyperparameters": {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.1},
        },
    )
    assert inline.status_code == 201, inline.text
    assert inline.json()["hyperparameters"] == {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.1}
    models = (
        await api.client.get("/models", headers=api.as_org("a"), params={"per_page": 1, "page": 2})
    ).json()
    assert (
        models["total"] == 3
        and models["page"] == 2
        and models["per_page"] == 1
        and len(models["models"]) == 1
    )
    bad = await api.client.get("/models", headers=api.as_org("a"), params={"per_page": 1000})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_PARAMETER"


async def test_registry_models_of_an_organisation(api: Api) -> None:
    created = await api.client.post(
        "/models",
        headers=api.as_org("a"),
        json={
            "name": "custom-gpt2",
            "type": "language_model",
            "config": {"base_model": "tiny-base", "hidden_size": 8},
        },
    )
    assert created.status_code == 201, created.text
    model = created.json()
    assert (
        model["status"] == "registered"
        and model["config"]["base_model"] == "tiny-base"
        and model["owned_by"] == "a"
    )
    duplicate = await api.client.post(
        "/models",
        headers=api.as_org("a"),
        json={"name": "custom-gpt2", "config": {"base_model": "tiny-base"}},
    )
    assert duplicate.status_code == 409
    file_id = (await upload(api)).json()["id"]
    job = await api.client.post(
        "/training/jobs", headers=api.as_org("a"), json={"model_id": model["id"], "dataset_path": file_id}
    )
    assert job.status_code == 201 and job.json()["model_id"] == model["id"]
    busy = await api.client.delete(f"/models/{model['id']}", headers=api.as_org("a"))
    assert busy.status_code == 409
    await api.client.post(f"/training/jobs/{job.json()['id']}/stop", headers=api.as_org("a"))
    assert (await api.client.get(f"/models/{model['id']}", headers=api.as_org("a"))).json()[
        "status"
    ] == "cancelled"
    gone = await api.client.delete(f"/models/{model['id']}", headers=api.as_org("a"))
    assert gone.json() == {"id": model["id"], "deleted": True}
    assert (await api.client.get(f"/models/{model['id']}", headers=api.as_org("a"))).status_code == 404
