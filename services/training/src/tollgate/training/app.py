"""Builds the training FastAPI app from collaborators the composition root (or a test) passes in."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.common.errors import TollgateError
from tollgate.common.http import ORJSONResponse, create_app
from tollgate.training.config import TrainingSettings
from tollgate.training.dependencies import Authenticator
from tollgate.training.errors import render_error
from tollgate.training.files.routes import router as files_router
from tollgate.training.files.service import FileService
from tollgate.training.jobs.openai_routes import router as openai_jobs_router
from tollgate.training.jobs.service import JobService
from tollgate.training.jobs.sloughgpt_routes import router as sloughgpt_jobs_router
from tollgate.training.metrics import ApiMetrics
from tollgate.training.registry.routes import router as registry_router
from tollgate.training.vectors.routes import router as vectors_router
from tollgate.training.vectors.service import VectorService

log = logging.getLogger(__name__)


def build_app(
    *,
    settings: TrainingSettings,
    registry: CollectorRegistry,
    sessions: async_sessionmaker[AsyncSession],
    auth_client: Authenticator,
    files: FileService,
    jobs: JobService,
    vectors: VectorService,
    outbox_kick: Callable[[], None] = lambda: None,
    health_check: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> FastAPI:
    app = create_app("training", registry, error_renderer=render_error, health_check=health_check)
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.auth_client = auth_client
    app.state.files = files
    app.state.jobs = jobs
    app.state.vectors = vectors
    app.state.metrics = ApiMetrics(registry)
    app.state.outbox_kick = outbox_kick

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        err = TollgateError("Internal server error.")
        return ORJSONResponse(render_error(request, err), status_code=500)

    app.include_router(files_router)
    app.include_router(openai_jobs_router)
    app.include_router(sloughgpt_jobs_router)
    app.include_router(registry_router)
    app.include_router(vectors_router)
    return app
