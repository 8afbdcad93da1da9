"""SloughGPT's training and fine-tuning jobs: POST/GET /training/jobs[/{id}], POST .../{id}/stop,
POST/GET /fine-tuning/jobs[/{id}] (inline prompt/completion data, LoRA hyperparameters)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request

from tollgate.common.http import ORJSONResponse
from tollgate.training.dependencies import PrincipalDep, SessionDep
from tollgate.training.files.repository import FileRepository
from tollgate.training.files.service import FileService
from tollgate.training.jobs.creation import cancel_job, create_job
from tollgate.training.jobs.presenters import sloughgpt_job
from tollgate.training.jobs.repository import JobRepository
from tollgate.training.jobs.requests import sloughgpt_hyper, sloughgpt_resources, sloughgpt_training_request
from tollgate.training.jobs.schemas import SloughGPTFineTuningJobCreate, SloughGPTTrainingJobCreate
from tollgate.training.jobs.service import JobRequest, JobService

router = APIRouter()


def _now() -> datetime:
    return datetime.now(UTC)


async def _get(request: Request, job_id: str, principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    service: JobService = request.app.state.jobs
    return sloughgpt_job(await service.get(session, principal.org_id, job_id), _now())


async def _list(session: SessionDep, org_id: str, surface: str, page: int, per_page: int) -> dict[str, Any]:
    rows = await JobRepository(session).page(org_id, None, page * per_page + 1, (surface,))
    items = rows[(page - 1) * per_page : page * per_page]
    return {
        "jobs": [sloughgpt_job(j, _now()) for j in items],
        "page": page,
        "per_page": per_page,
        "has_more": len(rows) > page * per_page,
    }


@router.post("/training/jobs", status_code=201)
async def create_training_job(
    request: Request, body: SloughGPTTrainingJobCreate, principal: PrincipalDep, session: SessionDep
) -> ORJSONResponse:
    job = await create_job(
        request, session, principal, sloughgpt_training_request(body, request.app.state.settings)
    )
    return ORJSONResponse(sloughgpt_job(job, _now()), status_code=201)


@router.get("/training/jobs")
async def list_training_jobs(
    principal: PrincipalDep,
    session: SessionDep,
    page: int = Query(1, ge=1, le=1000),
    per_page: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    return await _list(session, principal.org_id, "training", page, per_page)


@router.get("/training/jobs/{job_id}")
async def get_training_job(
    request: Request, job_id: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    return await _get(request, job_id, principal, session)


@router.post("/training/jobs/{job_id}/stop")
async def stop_training_job(
    request: Request, job_id: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    return sloughgpt_job(await cancel_job(request, session, principal, job_id), _now())


@router.post("/fine-tuning/jobs", status_code=201)
async def create_fine_tuning_job(
    request: Request, body: SloughGPTFineTuningJobCreate, principal: PrincipalDep, session: SessionDep
) -> ORJSONResponse:
    settings = request.app.state.settings
    files: FileService = request.app.state.files
    checked, data = await asyncio.to_thread(files.check_inline, body.training_data, param="training_data")
    stored = await files.store(
        FileRepository(session), principal.org_id, "training_data.jsonl", "fine-tune", data, checked
    )
    job_request = JobRequest(
        surface="fine-tuning",
        model_ref=body.base_model_id,
        training_file_id=stored.id,
        validation_file_id=None,
        hyperparameters=sloughgpt_hyper(settings, body.config, body.hyperparameters),
        resources=sloughgpt_resources(body.resources),
        suffix=body.suffix,
    )
    try:
        job = await create_job(request, session, principal, job_request)
    except BaseException:
        await files.storage.delete(stored.storage_path)  # refused (402) or failed: nothing stays
        raise
    return ORJSONResponse({**sloughgpt_job(job, _now()), "training_file": stored.id}, status_code=201)


@router.get("/fine-tuning/jobs")
async def list_fine_tuning_jobs(
    principal: PrincipalDep,
    session: SessionDep,
    page: int = Query(1, ge=1, le=1000),
    per_page: int = Query(20, ge=1, le=100),
) -> dict[str, Any]:
    return await _list(session, principal.org_id, "fine-tuning", page, per_page)


@router.get("/fine-tuning/jobs/{job_id}")
async def get_fine_tuning_job(
    request: Request, job_id: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    return await _get(request, job_id, principal, session)


@router.post("/fine-tuning/jobs/{job_id}/stop")
async def stop_fine_tuning_job(
    request: Request, job_id: str, principal: PrincipalDep, session: SessionDep
) -> dict[str, Any]:
    return sloughgpt_job(await cancel_job(request, session, principal, job_id), _now())
