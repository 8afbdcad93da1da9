"""`GET /analytics/usage` (SloughGPT): the caller's org usage between two dates, grouped."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollgate.analytics.dependencies import PrincipalDep, SessionDep
from tollgate.analytics.usage.service import UsageService, parse_usage_query

router = APIRouter()


@router.get("/analytics/usage")
async def get_usage(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    start_date: str | None = None,
    end_date: str | None = None,
    group_by: str | None = None,
) -> dict[str, Any]:
    state = request.app.state
    query = parse_usage_query(
        start_date,
        end_date,
        group_by,
        today=state.clock().date(),
        default_days=state.settings.default_window_days,
        max_days=state.settings.max_window_days,
    )
    service: UsageService = state.usage_service
    report = await service.report(session, principal.org_id, query)
    return report.model_dump()
