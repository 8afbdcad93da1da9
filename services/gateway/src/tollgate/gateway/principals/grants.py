"""Model authorisation at the gateway: the principal from auth says which models its key may call
(auth's model grants, docs/identity.md); the gateway only applies it, before any hold or upstream."""

from __future__ import annotations

from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden


class ModelNotAllowed(Forbidden):
    code = "model_not_allowed"


def ensure_model_allowed(principal: Principal, model: str) -> None:
    if not principal.may_use(model):
        raise ModelNotAllowed(f"This API key is not allowed to use the model '{model}'.", param="model")
