"""Vector collections (`/vectors/collections...`) and SloughGPT's `POST /search/vector`, in
SloughGPT's error envelope; a collection is named per organisation, another's is 404."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from tollgate.common.errors import NotFound
from tollgate.common.http import ORJSONResponse
from tollgate.training.dependencies import PrincipalDep, SessionDep
from tollgate.training.vectors.repository import VectorRepository
from tollgate.training.vectors.schemas import (
    CollectionCreate,
    DeleteRequest,
    SearchRequest,
    UpsertRequest,
    collection_body,
)
from tollgate.training.vectors.service import VectorService

router = APIRouter()


def _service(request: Request) -> VectorService:
    service: VectorService = request.app.state.vectors
    return service


@router.post("/vectors/collections", status_code=201)
async def create_collection(
    request: Request, body: CollectionCreate, principal: PrincipalDep, session: SessionDep
) -> ORJSONResponse:
    collection = await _service(request).create(VectorRepository(session), principal.org_id, body)
    return ORJSONResponse(collection_body(collection), status_code=201)


@router.get("/vectors/collections")
async def list_collections(principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    rows = await VectorRepository(session).collections(principal.org_id)
    return {"collections": [collection_body(c) for c in rows], "total": len(rows)}


@router.get("/vectors/collections/{name}")
async def get_collection(
    request: Request, name: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    return collection_body(await _service(request).get(VectorRepository(session), principal.org_id, name))


@router.delete("/vectors/collections/{name}")
async def delete_collection(
    request: Request, name: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    service = _service(request)
    collection_id = await service.delete(VectorRepository(session), principal.org_id, name)
    await session.commit()
    await service.indexes.forget(collection_id)
    return {"name": name, "deleted": True}


@router.post("/vectors/collections/{name}/upsert")
async def upsert_vectors(
    request: Request, name: str, body: UpsertRequest, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    count = await _service(request).upsert(VectorRepository(session), principal.org_id, name, body)
    return {"collection": name, "upserted_count": count}


@router.post("/vectors/collections/{name}/delete")
async def delete_vectors(
    request: Request, name: str, body: DeleteRequest, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    removed = await _service(request).delete_points(
        VectorRepository(session), principal.org_id, name, body.ids
    )
    return {"collection": name, "deleted_count": removed}


@router.get("/vectors/collections/{name}/vectors/{point_id}")
async def fetch_vector(
    request: Request, name: str, point_id: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    repo = VectorRepository(session)
    collection = await _service(request).get(repo, principal.org_id, name)
    point = await repo.point(collection.id, point_id)
    if point is None or point.vector is None:
        raise NotFound(f"No vector '{point_id}' in collection '{name}'.", param="id")
    values = np.frombuffer(point.vector, dtype="<f4").tolist()
    return {"id": point.point_id, "values": values, "metadata": point.payload}


@router.post("/search/vector")
async def search_vectors(
    request: Request, body: SearchRequest, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    result = await _service(request).search(VectorRepository(session), principal.org_id, body)
    results = []
    for match in result.matches:
        item: dict[str, Any] = {"id": match.point.point_id, "score": round(match.score, 6)}
        if body.include_metadata:
            item["metadata"] = match.point.metadata
        if body.include_values and match.point.vector is not None:
            item["values"] = np.frombuffer(match.point.vector, dtype="<f4").tolist()
        results.append(item)
    return {
        "results": results,
        "collection": body.collection,
        "top_k": body.top_k,
        "similarity_threshold": body.similarity_threshold,
        "plan": result.plan,
    }
