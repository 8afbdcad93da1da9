"""OpenAI fine-tuning: POST/GET /v1/fine_tuning/jobs, GET .../{id}, POST .../{id}/cancel,
GET .../{id}/events, GET .../{id}/checkpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from tollgate.training.dependencies import PrincipalDep, SessionDep
from tollgate.training.jobs.creation import cancel_job, create_job
from tollgate.training.jobs.presenters import openai_checkpoint, openai_event, openai_job
from tollgate.training.jobs.repository import JobRepository
from tollgate.training.jobs.requests import openai_request
from tollgate.training.jobs.schemas import OpenAIJobCreate
from tollgate.training.jobs.service import JobService

router = APIRouter(prefix="/v1/fine_tuning/jobs")


def _service(request: Request) -> JobService:
    service: JobService = request.app.state.jobs
    return service


@router.post("")
async def create(
    request: Request, body: OpenAIJobCreate, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    job = await create_job(request, session, principal, openai_request(body, request.app.state.settings))
    return openai_job(job)


@router.get("")
async def list_jobs(
    principal: PrincipalDep,
    session: SessionDep,
    after: str | None = None,
    limit: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    rows = await JobRepository(session).page(principal.org_id, after, limit + 1)
    return {"object": "list", "data": [openai_job(j) for j in rows[:limit]], "has_more": len(rows) > limit}


@router.get("/{job_id}")
async def retrieve(
    request: Request, job_id: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    return openai_job(await _service(request).get(session, principal.org_id, job_id))


@router.post("/{job_id}/cancel")
async def cancel(
    request: Request, job_id: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    return openai_job(await cancel_job(request, session, principal, job_id))


@router.get("/{job_id}/events")
async def events(
    request: Request,
    job_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    after: str | None = None,
    limit: int = Query(20, ge=1, le=1000),
) -> dict[str, Any]:
    await _service(request).get(session, principal.org_id, job_id)
    cursor = (
        int(after.removeprefix("ftevent-")) if after and after.removeprefix("ftevent-").isdigit() else None
    )
    rows = await JobRepository(session).events(job_id, cursor, limit + 1)
    return {"object": "list", "data": [openai_event(e) for e in rows[:limit]], "has_more": len(rows) > limit}


@router.get("/{job_id}/checkpoints")
async def checkpoints(
    request: Request,
    job_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    after: str | None = None,
    limit: int = Query(10, ge=1, le=100),
) -> dict[str, Any]:
    job = await _service(request).get(session, principal.org_id, job_id)
    rows = await JobRepository(session).checkpoints(job_id, after, limit + 1)
    data = [openai_checkpoint(job, c) for c in rows[:limit]]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(rows) > limit,
    }
