"""OpenAI's DELETE /v1/models/{model} (`client.models.delete("ft:...")`).

Fine-tuned models belong to the training service: its registry knows which organisation owns which
one, soft-deletes it, removes its adapter and publishes ModelDeleted, which drops it from this
catalog (catalog/deployments.py). So the gateway forwards the request there, and answers itself
only what it knows without asking:
- a model of its catalog that is not fine-tuned (a base or provider model) is never deleted by a
  key: 403, as OpenAI answers for its own models (admins remove catalog models with
  /admin/model/delete);
- another organisation's fine-tuned model does not exist for this caller: 404, as on the chat path.
The key needs the `delete` permission (checked by the principal dependency, by method)."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden, NotFound
from tollgate.gateway.catalog.snapshot import CatalogEntry
from tollgate.gateway.principals.dependencies import PrincipalDependency
from tollgate.gateway.principals.grants import fine_tuned_owner
from tollgate.gateway.proxy.forwarder import Forwarder

TRAINING = "training"


class Catalog(Protocol):
    def get(self, name: str) -> CatalogEntry | None: ...


class ModelNotDeletable(Forbidden):
    """OpenAI's answer to deleting one of its base models: 403 in its invalid-request shape."""

    error_type = "invalid_request_error"
    code = "model_not_deletable"


def model_not_found(model: str) -> NotFound:
    return NotFound(f"The model '{model}' does not exist.", param="model", code="model_not_found")


def build_router(catalog: Catalog, current_principal: PrincipalDependency, forwarder: Forwarder) -> APIRouter:
    router = APIRouter()

    @router.delete("/v1/models/{model:path}")
    async def delete_model(
        request: Request, model: str, principal: Principal = Depends(current_principal)
    ) -> Response:
        owner = fine_tuned_owner(model)
        if owner is None and catalog.get(model) is not None:
            raise ModelNotDeletable("You do not have permission to delete this model.", param="model")
        if owner is not None and owner != principal.org_id:
            raise model_not_found(model)
        # the organisation's own fine-tuned model, or a name only the training registry may know
        return await forwarder.forward(request, service=TRAINING)

    return router
