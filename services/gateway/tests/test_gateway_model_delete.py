"""OpenAI's DELETE /v1/models/{model} at the gateway: the organisation's own fine-tuned model is
forwarded to the training service (which deletes it); a catalog model that is not fine-tuned is
403 and another organisation's fine-tuned model 404, both without asking training; the key needs
the `delete` permission."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import openai
import pytest
from gateway_fakes import FakeCatalog, entry
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tollgate.common.auth_client import Principal
from tollgate.common.errors import Unauthenticated
from tollgate.common.http import create_app
from tollgate.gateway.catalog import model_deletion
from tollgate.gateway.envelopes import gateway_error_renderer
from tollgate.gateway.metrics import GatewayMetrics
from tollgate.gateway.principals.cache import PrincipalCache
from tollgate.gateway.principals.dependencies import principal_dependency
from tollgate.gateway.proxy import routes as proxy_routes
from tollgate.gateway.proxy.forwarder import Forwarder

MINE = "ft:gpt-sim:org-1:mine:ftjob-1"
THEIRS = "ft:gpt-sim:org-other:theirs:ftjob-2"
KEYS = {
    "owner-key": ("read", "write", "delete"),
    "no-delete-key": ("read", "write"),
}


async def authenticate(api_key: str) -> Principal:
    if api_key not in KEYS:
        raise Unauthenticated("Incorrect API key provided.")
    return Principal(1, "org-1", "user-1", "user", 0, KEYS[api_key], "tg_x", 0, 0)


@dataclass
class Training:
    """Stands in for the training service: records what reached it, answers as it would."""

    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def delete(self, request: Request) -> JSONResponse:
        model = request.path_params["model"]
        self.seen.append((request.method, request.url.path, request.headers.get("authorization")))
        if model != MINE:
            body = {"message": f"The model '{model}' does not exist.", "type": "invalid_request_error"}
            return JSONResponse({"error": {**body, "param": "model", "code": "model_not_found"}}, 404)
        return JSONResponse({"id": model, "object": "model", "deleted": True})


@pytest.fixture
async def gateway() -> AsyncIterator[tuple[httpx.AsyncClient, Training]]:
    training = Training()
    owner = Starlette(routes=[Route("/v1/models/{model:path}", training.delete, methods=["DELETE"])])
    upstream = httpx.AsyncClient(transport=httpx.ASGITransport(app=owner))
    forwarder = Forwarder({"training": "http://training"}, upstream)
    catalog = FakeCatalog([entry(name, "sim-model", upstream) for name in ("gpt-sim", MINE, THEIRS)])
    registry = CollectorRegistry()
    principals = PrincipalCache(authenticate, GatewayMetrics(registry))
    app = create_app("gateway", registry, error_renderer=gateway_error_renderer)
    app.include_router(model_deletion.build_router(catalog, principal_dependency(principals), forwarder))
    app.include_router(proxy_routes.build_router(forwarder))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    yield client, training
    await client.aclose()
    await upstream.aclose()


def key(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {name}"}


def error(resp: httpx.Response) -> dict[str, object]:
    body = resp.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


async def test_the_organisations_own_fine_tuned_model_is_deleted_by_training(
    gateway: tuple[httpx.AsyncClient, Training],
) -> None:
    client, training = gateway
    resp = await client.delete(f"/v1/models/{MINE}", headers=key("owner-key"))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"id": MINE, "object": "model", "deleted": True}
    assert training.seen == [("DELETE", f"/v1/models/{MINE}", "Bearer owner-key")]


async def test_a_base_model_is_403_and_another_organisations_model_404_without_asking_training(
    gateway: tuple[httpx.AsyncClient, Training],
) -> None:
    client, training = gateway
    base = await client.delete("/v1/models/gpt-sim", headers=key("owner-key"))
    assert base.status_code == 403
    assert error(base) == {
        "message": "You do not have permission to delete this model.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_deletable",
    }
    theirs = await client.delete(f"/v1/models/{THEIRS}", headers=key("owner-key"))
    assert theirs.status_code == 404
    assert error(theirs) == {
        "message": f"The model '{THEIRS}' does not exist.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert training.seen == []


async def test_a_key_without_delete_permission_or_no_key_deletes_nothing(
    gateway: tuple[httpx.AsyncClient, Training],
) -> None:
    client, training = gateway
    refused = await client.delete(f"/v1/models/{MINE}", headers=key("no-delete-key"))
    assert refused.status_code == 403 and error(refused)["code"] == "permission_denied"
    anonymous = await client.delete(f"/v1/models/{MINE}")
    assert anonymous.status_code == 401
    assert training.seen == []


async def test_an_unknown_name_is_left_to_the_training_registry(
    gateway: tuple[httpx.AsyncClient, Training],
) -> None:
    client, training = gateway
    resp = await client.delete("/v1/models/nothing-like-it", headers=key("owner-key"))
    assert resp.status_code == 404 and error(resp)["code"] == "model_not_found"
    assert [path for _, path, _ in training.seen] == ["/v1/models/nothing-like-it"]


async def test_the_openai_sdk_deletes_through_the_gateway(
    gateway: tuple[httpx.AsyncClient, Training],
) -> None:
    client, _ = gateway
    sdk = openai.AsyncOpenAI(
        base_url="http://gateway/v1", api_key="owner-key", http_client=client, max_retries=0
    )
    deleted = await sdk.models.delete(MINE)
    assert deleted.id == MINE and deleted.deleted and deleted.object == "model"
    with pytest.raises(openai.PermissionDeniedError):
        await sdk.models.delete("gpt-sim")
    with pytest.raises(openai.NotFoundError):
        await sdk.models.delete(THEIRS)
