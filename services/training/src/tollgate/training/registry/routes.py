"""SloughGPT's model registry: GET /models (paged), POST /models, GET/DELETE /models/{id}; and
OpenAI's DELETE /v1/models/{model} for a fine-tuned model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.common.http import ORJSONResponse
from tollgate.training.dependencies import PrincipalDep, SessionDep
from tollgate.training.registry.repository import RegistryRepository
from tollgate.training.registry.schemas import ModelCreate, model_detail, model_summary
from tollgate.training.registry.service import RegistryService

router = APIRouter()
_service = RegistryService()


@router.get("/models")
async def list_models(
    principal: PrincipalDep,
    session: SessionDep,
    page: int = Query(1, ge=1, le=100_000),
    per_page: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    rows, total = await RegistryRepository(session).page(principal.org_id, page, per_page)
    return {"models": [model_summary(m) for m in rows], "total": total, "page": page, "per_page": per_page}


@router.post("/models", status_code=201)
async def create_model(body: ModelCreate, principal: PrincipalDep, session: SessionDep) -> ORJSONResponse:
    model = await _service.create(RegistryRepository(session), principal, body)
    return ORJSONResponse(model_detail(model), status_code=201)


@router.get("/models/{model_id}")
async def get_model(model_id: str, principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    return model_detail(await _service.get(RegistryRepository(session), principal.org_id, model_id))


@router.delete("/models/{model_id}")
async def delete_model(
    request: Request, model_id: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    adapter = await _service.delete(RegistryRepository(session), principal, model_id)
    await _deleted(request, session, adapter)
    return {"id": model_id, "deleted": True}


# OpenAI's `client.models.delete("ft:...")` (the gateway forwards it): the same deletion, by the
# fine-tuned model's served name, answered in OpenAI's shape (and its error envelope, as /v1/*).
@router.delete("/v1/models/{model:path}")
async def delete_openai_model(
    request: Request, model: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    adapter = await _service.delete_served(RegistryRepository(session), principal, model)
    await _deleted(request, session, adapter)
    return {"id": model, "object": "model", "deleted": True}


async def _deleted(request: Request, session: AsyncSession, adapter: str | None) -> None:
    """Commits the deletion, publishes its ModelDeleted at once, then removes the adapter file (the
    model server stops serving it at its next request)."""
    await session.commit()
    request.app.state.outbox_kick()
    if adapter:
        await asyncio.to_thread(Path(adapter).unlink, True)
