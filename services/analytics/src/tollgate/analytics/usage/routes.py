"""`GET /analytics/usage` (SloughGPT): the caller's org usage between two dates, grouped, optionally
for one key or operation; `GET /analytics/latency` and `GET /analytics/errors` (ours): latency
percentiles and the most recent failed requests. Every route reads the caller's own org only."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollgate.analytics.dependencies import PrincipalDep, SessionDep
from tollgate.analytics.usage.insights import (
    InsightsService,
    LatencyQuery,
    parse_error_query,
    parse_filters,
    parse_latency_group,
)
from tollgate.analytics.usage.schemas import UsageFilter, UsageQuery
from tollgate.analytics.usage.service import UsageService, parse_usage_query

router = APIRouter()


def _window(
    state: Any, start: str | None, end: str | None, group_by: str | None, filters: UsageFilter
) -> UsageQuery:
    """The date window both reports read, bounded by the service's settings."""
    return parse_usage_query(
        start,
        end,
        group_by,
        today=state.clock().date(),
        default_days=state.settings.default_window_days,
        max_days=state.settings.max_window_days,
        filters=filters,
    )


@router.get("/analytics/usage")
async def get_usage(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    start_date: str | None = None,
    end_date: str | None = None,
    group_by: str | None = None,
    key_id: str | None = None,
    operation: str | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    state = request.app.state
    query = _window(state, start_date, end_date, group_by, parse_filters(key_id, operation, model))
    service: UsageService = state.usage_service
    report = await service.report(session, principal.org_id, query)
    return report.model_dump()


@router.get("/analytics/latency")
async def get_latency(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    start_date: str | None = None,
    end_date: str | None = None,
    group_by: str | None = None,
    model: str | None = None,
    key_id: str | None = None,
    operation: str | None = None,
) -> dict[str, Any]:
    state = request.app.state
    grouping = parse_latency_group(group_by)
    dates = _window(state, start_date, end_date, None, parse_filters(key_id, operation, model))
    service: InsightsService = state.insights_service
    report = await service.latency(session, principal.org_id, LatencyQuery(dates, grouping))
    return report.model_dump()


@router.get("/analytics/errors")
async def get_errors(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    limit: str | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    count, cursor = parse_error_query(limit, before)
    service: InsightsService = request.app.state.insights_service
    page = await service.errors(session, principal.org_id, count, cursor)
    return page.model_dump()
