"""Admin model routes (the Bedrock-style gateway) and the OpenAI model list. Thin: parse, call the
service, shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.auth_client import Principal
from tollgate.gateway.catalog.repository import ModelRepository
from tollgate.gateway.catalog.schemas import ModelDeleteIn, ModelListOut, ModelOut, ModelSaveIn
from tollgate.gateway.catalog.secrets import SecretBox
from tollgate.gateway.catalog.service import CatalogService, to_out
from tollgate.gateway.catalog.snapshot import CatalogSnapshot
from tollgate.gateway.principals.dependencies import PrincipalDependency, admin_dependency
from tollgate.gateway.principals.grants import may_call


def build_router(
    sessions: async_sessionmaker[AsyncSession],
    snapshot: CatalogSnapshot,
    box: SecretBox,
    current_principal: PrincipalDependency,
    default_max_tokens: int,
) -> APIRouter:
    router = APIRouter()
    admin = Depends(admin_dependency(current_principal))

    def service(session: AsyncSession) -> CatalogService:
        return CatalogService(ModelRepository(session), box, default_max_tokens)

    @router.post("/admin/model/save", response_model=ModelOut)
    async def save_model(body: ModelSaveIn, _: Principal = admin) -> ModelOut:
        # The request owns the transaction; the snapshot reloads only after the commit.
        async with sessions() as session, session.begin():
            model = await service(session).save(body)
            out = to_out(model)
        await snapshot.reload()
        return out

    @router.post("/admin/model/delete")
    async def delete_model(body: ModelDeleteIn, _: Principal = admin) -> dict[str, Any]:
        async with sessions() as session, session.begin():
            await service(session).delete(body.id)
        await snapshot.reload()
        return {"id": body.id, "deleted": True}

    @router.get("/admin/model/list", response_model=ModelListOut)
    async def list_models(
        q: str | None = None,
        limit: int = Query(10, ge=1, le=500),
        offset: int = Query(0, ge=0),
        _: Principal = admin,
    ) -> ModelListOut:
        async with sessions() as session:
            rows, total = await service(session).list_models(q or None, limit, offset)
            return ModelListOut(data=[to_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @router.get("/v1/models")
    async def openai_models(principal: Principal = Depends(current_principal)) -> dict[str, Any]:
        # Only the models this key may call (auth's model grants, carried by the principal; a
        # fine-tuned model only for its own organisation).
        data = [
            {"id": e.name, "object": "model", "created": e.created_unix, "owned_by": e.provider}
            for e in snapshot.entries()
            if may_call(principal, e.name)
        ]
        return {"object": "list", "data": data}

    return router
