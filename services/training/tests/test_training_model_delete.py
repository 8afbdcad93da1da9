"""OpenAI's DELETE /v1/models/{model} on the training API: the organisation's deployed fine-tuned
model, named as it is served (`ft:...`), is deleted as SloughGPT's DELETE /models/{id} deletes it
(soft delete, ModelDeleted for the gateway's catalog, adapter removed); a base model is 403 and
anything else 404 in OpenAI's envelope, with nothing changed."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from training_api_testkit import Api

from tollgate.contracts.v1 import training_pb2
from tollgate.training.registry.models import RegistryModel

SERVED = "ft:tiny-base:a:bot:ftjob-0123456789abcdef01234567"


async def deployed_model(api: Api, tmp_path: Path, *, status: str = "deployed") -> tuple[str, Path]:
    """Org a's fine-tuned model as a succeeded job leaves it (trainer/store.py `succeed`)."""
    adapter = tmp_path / "adapters" / "ftjob-0123456789abcdef01234567.gguf"
    adapter.parent.mkdir(parents=True, exist_ok=True)
    adapter.write_bytes(b"GGUF")
    async with api.sessions.begin() as session:
        found = await session.execute(select(RegistryModel).where(RegistryModel.name == "tiny-base"))
        base = found.scalar_one()
        session.add(
            RegistryModel(
                id="model-ft1",
                org_id="a",
                name="bot",
                type="language_model",
                status=status,
                base_model_id=base.id,
                job_id="ftjob-0123456789abcdef01234567",
                served_name=SERVED,
                adapter_path=str(adapter),
                config={"base_model": "tiny-base"},
                metrics={},
            )
        )
    return "model-ft1", adapter


def openai_error(body: dict[str, object], code: str) -> dict[str, object]:
    error = body["error"]
    assert isinstance(error, dict) and error["code"] == code and error["param"] == "model", body
    assert error["type"] == "invalid_request_error" and error["message"], body
    return error


async def test_the_organisations_fine_tuned_model_is_deleted_everywhere(api: Api, tmp_path: Path) -> None:
    model_id, adapter = await deployed_model(api, tmp_path)
    resp = await api.client.delete(f"/v1/models/{SERVED}", headers=api.as_org("a"))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": SERVED, "object": "model", "deleted": True}
    assert (await api.client.get(f"/models/{model_id}", headers=api.as_org("a"))).status_code == 404
    assert not adapter.exists()
    (record,) = [r for r in await api.outbox() if r.event_type == "ModelDeleted"]
    deleted = training_pb2.ModelDeleted.FromString(record.payload)
    assert (deleted.name, deleted.org_id, deleted.model_id) == (SERVED, "a", model_id)
    again = await api.client.delete(f"/v1/models/{SERVED}", headers=api.as_org("a"))
    assert again.status_code == 404
    openai_error(again.json(), "model_not_found")


async def test_another_organisation_or_an_unknown_name_is_404_and_nothing_changes(
    api: Api, tmp_path: Path
) -> None:
    model_id, adapter = await deployed_model(api, tmp_path)
    for org, name in (("b", SERVED), ("a", "ft:tiny-base:a:bot:ftjob-nothing"), ("a", "bot")):
        resp = await api.client.delete(f"/v1/models/{name}", headers=api.as_org(org))
        assert resp.status_code == 404, (org, name, resp.text)
        assert "does not exist" in str(openai_error(resp.json(), "model_not_found")["message"])
    assert adapter.exists() and await api.outbox() == []
    kept = await api.client.get(f"/models/{model_id}", headers=api.as_org("a"))
    assert kept.json()["status"] == "deployed"


async def test_a_base_model_is_403_and_stays(api: Api) -> None:
    for key in (api.as_org("a"), {"Authorization": "Bearer admin"}):
        resp = await api.client.delete("/v1/models/tiny-base", headers=key)
        assert resp.status_code == 403, resp.text
        error = openai_error(resp.json(), "model_not_deletable")
        assert error["message"] == "You do not have permission to delete this model."
    listed = (await api.client.get("/models", headers=api.as_org("a"))).json()["models"]
    assert [m["name"] for m in listed] == ["tiny-base"]


async def test_a_model_being_trained_or_a_key_without_delete_is_refused(api: Api, tmp_path: Path) -> None:
    await deployed_model(api, tmp_path, status="training")
    busy = await api.client.delete(f"/v1/models/{SERVED}", headers=api.as_org("a"))
    assert busy.status_code == 409
    assert openai_error(busy.json(), "model_in_use")
    api.auth.read_only.add("a")
    refused = await api.client.delete(f"/v1/models/{SERVED}", headers=api.as_org("a"))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert await api.outbox() == []
