"""Model authorisation at the gateway: the principal from auth says which models its key may call
(auth's model grants, docs/identity.md); the gateway only applies it, before any hold or upstream."""

from __future__ import annotations

from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden, NotFound


class ModelNotAllowed(Forbidden):
    code = "model_not_allowed"


def fine_tuned_owner(model: str) -> str | None:
    """The organisation a fine-tuned model belongs to: `ft:<base>:<org>:<suffix>:<job>` (training
    names it so, and org ids, suffixes and job ids hold no colon). None for any other model."""
    if not model.startswith("ft:"):
        return None
    parts = model.split(":")
    return parts[-3] if len(parts) >= 5 else ""


def may_call(principal: Principal, model: str) -> bool:
    """The key's grants allow the model, and a fine-tuned model is its own organisation's."""
    owner = fine_tuned_owner(model)
    return principal.may_use(model) and (owner is None or owner == principal.org_id)


def ensure_model_allowed(principal: Principal, model: str) -> None:
    owner = fine_tuned_owner(model)
    if owner is not None and owner != principal.org_id:
        # another organisation's fine-tuned model does not exist for this caller
        raise NotFound(f"The model '{model}' does not exist.", param="model", code="model_not_found")
    if not principal.may_use(model):
        raise ModelNotAllowed(f"This API key is not allowed to use the model '{model}'.", param="model")
