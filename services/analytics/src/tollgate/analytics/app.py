"""Builds the analytics FastAPI app from collaborators the composition root (or a test) passes in."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.analytics.config import AnalyticsSettings
from tollgate.analytics.dependencies import Authenticator
from tollgate.analytics.errors import sloughgpt_error_envelope
from tollgate.analytics.records.routes import router as records_router
from tollgate.analytics.records.service import ChatRecordService
from tollgate.analytics.records.wiring import records_error_renderer
from tollgate.analytics.usage.insights import InsightsService
from tollgate.analytics.usage.key_rollup import KeyRollupRepository
from tollgate.analytics.usage.routes import router as usage_router
from tollgate.analytics.usage.service import UsageService
from tollgate.common.errors import TollgateError
from tollgate.common.http import ORJSONResponse, create_app

log = logging.getLogger(__name__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_app(
    *,
    settings: AnalyticsSettings,
    registry: CollectorRegistry,
    sessions: async_sessionmaker[AsyncSession],
    auth_client: Authenticator,
    usage_service: UsageService,
    health_check: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
    records: ChatRecordService | None = None,
    insights_service: InsightsService | None = None,
) -> FastAPI:
    # SloughGPT's envelope on /analytics/*, seed 004's (OpenAI's) on the chat records routes
    renderer = records_error_renderer(sloughgpt_error_envelope)
    app = create_app("analytics", registry, error_renderer=renderer, health_check=health_check)
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.auth_client = auth_client
    app.state.usage_service = usage_service
    # latency percentiles and the error feed read the same database through their own SQL
    app.state.insights_service = insights_service or InsightsService(KeyRollupRepository())
    app.state.clock = clock

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Still answer in SloughGPT's envelope (with the request id to find the logged traceback).
        log.exception("unhandled error")
        err = TollgateError("Internal server error.")
        return ORJSONResponse(renderer(request, err), status_code=500)

    app.include_router(usage_router)
    if records is not None:
        app.state.records = records
        app.include_router(records_router)
    return app
