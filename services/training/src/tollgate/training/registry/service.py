"""Registry rules (SloughGPT's /models): platform admins register base models (their GGUF and their
training price); an organisation registers its own models on a base and trains them; a deployed
fine-tuned model is deleted everywhere (catalog, adapter) when its model is deleted. Never commits."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden, InvalidRequest, NotFound
from tollgate.common.money import credits_to_micros
from tollgate.training.domain import (
    ACTIVE,
    BASE_ACTIVE,
    BASE_MODEL,
    LANGUAGE_MODEL,
    MODEL_DEPLOYED,
    MODEL_REGISTERED,
    MODEL_TRAINING,
    new_id,
)
from tollgate.training.errors import Conflict
from tollgate.training.events import messages
from tollgate.training.jobs.models import Job
from tollgate.training.registry.models import RegistryModel
from tollgate.training.registry.repository import RegistryRepository
from tollgate.training.registry.schemas import ModelCreate

CHAT_FORMATS = frozenset({"gemma"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ModelNotDeletable(Forbidden):
    """OpenAI's answer to deleting one of its base models: 403 in its invalid-request shape."""

    error_type = "invalid_request_error"
    code = "model_not_deletable"


def not_found(model_id: str) -> NotFound:
    return NotFound(f"Model {model_id!r} not found.", param="model_id", code="model_not_found")


class RegistryService:
    async def create(
        self, repo: RegistryRepository, principal: Principal, body: ModelCreate
    ) -> RegistryModel:
        name = body.name.strip()
        if not _NAME_RE.match(name):
            raise InvalidRequest("name: letters, digits, '.', '_' and '-' only.", param="name")
        if body.type == BASE_MODEL:
            return await self._create_base(repo, principal, name, body)
        if body.type != LANGUAGE_MODEL:
            raise InvalidRequest("type must be 'language_model' (or 'base_model' for admins).", param="type")
        if body.pricing:
            raise InvalidRequest("pricing is set on base models only.", param="pricing")
        base_ref = body.config.get("base_model")
        if not isinstance(base_ref, str) or not base_ref:
            raise InvalidRequest(
                "config.base_model must name the base model this model is trained from.",
                param="config.base_model",
            )
        base = await repo.find_base(base_ref)
        if base is None:
            raise InvalidRequest(f"Unknown base model {base_ref!r}.", param="config.base_model")
        if await repo.name_taken(principal.org_id, name):
            raise Conflict(f"A model named {name!r} already exists.", param="name", code="duplicate_name")
        return await repo.add(
            RegistryModel(
                id=new_id("model"),
                org_id=principal.org_id,
                name=name,
                type=LANGUAGE_MODEL,
                status=MODEL_REGISTERED,
                base_model_id=base.id,
                config={**body.config, "base_model": base.name},
                description=body.description,
                metrics={},
            )
        )

    async def _create_base(
        self, repo: RegistryRepository, principal: Principal, name: str, body: ModelCreate
    ) -> RegistryModel:
        if not principal.is_admin:
            raise Forbidden("Only platform admins register base models.", code="admin_required")
        config = dict(body.config)
        source = config.pop("source", None)
        if not isinstance(source, str) or not await asyncio.to_thread(Path(source).is_file):
            raise InvalidRequest(
                "config.source must be the path of the base model's GGUF file.", param="config.source"
            )
        chat_format = config.pop("chat_format", "gemma")
        if chat_format not in CHAT_FORMATS:
            raise InvalidRequest(
                f"config.chat_format must be one of {sorted(CHAT_FORMATS)}.", param="config.chat_format"
            )
        price = (body.pricing or {}).get("training", 0)
        if not isinstance(price, int | float) or price < 0:
            raise InvalidRequest("pricing.training must be a number >= 0.", param="pricing.training")
        existing = await repo.find_base(name)
        values: dict[str, Any] = {
            "source": source,
            "chat_format": chat_format,
            "price_training_micros": credits_to_micros(price),
            "config": config,
            "description": body.description,
            "size_bytes": (await asyncio.to_thread(Path(source).stat)).st_size,
        }
        if existing is not None:  # registering a base again updates it (what `make run` re-runs)
            for key, value in values.items():
                setattr(existing, key, value)
            existing.updated_at = func.now()
            await repo.session.flush()
            await repo.session.refresh(existing)
            return existing
        return await repo.add(
            RegistryModel(
                id=new_id("model"),
                org_id=None,
                name=name,
                type=BASE_MODEL,
                status=BASE_ACTIVE,
                metrics={},
                **values,
            )
        )

    async def get(self, repo: RegistryRepository, org_id: str, model_id: str) -> RegistryModel:
        found = await repo.get_visible(org_id, model_id)
        if found is None:
            raise not_found(model_id)
        return found

    async def delete(self, repo: RegistryRepository, principal: Principal, model_id: str) -> str | None:
        """Soft-deletes; a deployed model leaves the catalog (ModelDeleted). Returns the adapter to
        remove once committed."""
        found = await repo.get_visible(principal.org_id, model_id, lock=True)
        if found is None:
            raise not_found(model_id)
        if found.org_id is None and not principal.is_admin:
            raise Forbidden("Base models are deleted by platform admins only.", code="admin_required")
        return await self._soft_delete(repo, found, model_id, param="model_id")

    async def delete_served(self, repo: RegistryRepository, principal: Principal, name: str) -> str | None:
        """OpenAI's DELETE /v1/models/{model}: the organisation's fine-tuned model by the name it is
        served under, deleted like `delete` does. A base model is never deleted here (403, as
        OpenAI answers for its own models); anything else is 404, another organisation's included."""
        found = await repo.get_served(principal.org_id, name, lock=True)
        if found is None:
            if await repo.find_base(name) is not None:
                raise ModelNotDeletable("You do not have permission to delete this model.", param="model")
            raise NotFound(f"The model '{name}' does not exist.", param="model", code="model_not_found")
        return await self._soft_delete(repo, found, name, param="model")

    async def _soft_delete(
        self, repo: RegistryRepository, found: RegistryModel, ref: str, *, param: str
    ) -> str | None:
        if await self._in_use(repo, found):
            raise Conflict(
                f"Model {ref} is being trained; cancel its job first.", param=param, code="model_in_use"
            )
        if found.status == MODEL_DEPLOYED and found.served_name and found.org_id:
            repo.session.add(messages.model_deleted(found.id, found.served_name, found.org_id))
        found.deleted_at = func.now()
        found.updated_at = func.now()
        await repo.session.flush()
        return found.adapter_path

    async def _in_use(self, repo: RegistryRepository, model: RegistryModel) -> bool:
        if model.status == MODEL_TRAINING:
            return True
        column = Job.base_model_id if model.org_id is None else Job.registry_model_id
        stmt = select(Job.id).where(column == model.id, Job.status.in_(ACTIVE)).limit(1)
        return (await repo.session.execute(stmt)).first() is not None
