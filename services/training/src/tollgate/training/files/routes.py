"""OpenAI Files API subset: POST/GET /v1/files, GET/DELETE /v1/files/{id}, GET .../content."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from tollgate.training.dependencies import PrincipalDep, SessionDep
from tollgate.training.errors import FileTooLarge
from tollgate.training.files.repository import FileRepository
from tollgate.training.files.schemas import FileDeleted, FileList, FileObject
from tollgate.training.files.service import FileService

router = APIRouter()


def _service(request: Request) -> FileService:
    service: FileService = request.app.state.files
    return service


@router.post("/v1/files", response_model=FileObject)
async def upload_file(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    purpose: Annotated[str, Form()],
) -> FileObject:
    service = _service(request)
    # read at most one byte past the limit: an oversized upload is refused without holding it all
    data = await file.read(service.max_bytes + 1)
    if len(data) > service.max_bytes:
        raise FileTooLarge(f"The file is larger than {service.max_bytes} bytes.", param="file")
    stored = await service.upload(
        FileRepository(session), principal.org_id, file.filename or "", purpose, data
    )
    return FileObject.of(stored)


@router.get("/v1/files", response_model=FileList)
async def list_files(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    purpose: str | None = None,
    after: str | None = None,
    limit: int = Query(10_000, ge=1, le=10_000),
    order: Literal["asc", "desc"] = "desc",
) -> FileList:
    rows = await FileRepository(session).page(principal.org_id, purpose, after, limit + 1, order == "desc")
    data = [FileObject.of(f) for f in rows[:limit]]
    return FileList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=len(rows) > limit,
    )


@router.get("/v1/files/{file_id}", response_model=FileObject)
async def get_file(
    request: Request, file_id: str, principal: PrincipalDep, session: SessionDep
) -> FileObject:
    return FileObject.of(await _service(request).get(FileRepository(session), principal.org_id, file_id))


@router.get("/v1/files/{file_id}/content")
async def file_content(
    request: Request, file_id: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    data = await _service(request).content(FileRepository(session), principal.org_id, file_id)
    return Response(data, media_type="application/jsonl")


@router.delete("/v1/files/{file_id}", response_model=FileDeleted)
async def delete_file(
    request: Request, file_id: str, principal: PrincipalDep, session: SessionDep
) -> FileDeleted:
    service = _service(request)
    path = await service.delete(FileRepository(session), principal.org_id, file_id)
    await session.commit()  # the row is gone for good before the content is removed
    await asyncio.shield(service.storage.delete(path))
    return FileDeleted(id=file_id)
