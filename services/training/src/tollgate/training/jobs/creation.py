"""The create step both surfaces share: the service's work and the commit, with the hold released
if the commit fails (else it would wait for its TTL), and the outbox relay woken."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from tollgate.common.auth_client import Principal
from tollgate.training.jobs.models import Job
from tollgate.training.jobs.service import JobRequest, JobService


async def create_job(
    request: Request, session: AsyncSession, principal: Principal, job_request: JobRequest
) -> Job:
    service: JobService = request.app.state.jobs
    job = await service.create(session, principal, job_request)
    try:
        await session.commit()
    except BaseException:
        await service.holds.release(principal.org_id, job.hold_id)
        raise
    request.app.state.metrics.jobs_created.labels(job_request.surface).inc()
    return job


async def cancel_job(request: Request, session: AsyncSession, principal: Principal, job_id: str) -> Job:
    service: JobService = request.app.state.jobs
    job = await service.cancel(session, principal.org_id, job_id)
    await session.commit()
    request.app.state.outbox_kick()
    return job
