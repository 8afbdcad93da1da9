"""`/cost/webhooks` (endpoints that receive signed alerts) and `/cost/alerts` (what fired, and how
each delivery went), in SloughGPT's error envelope. Callers: an owner or admin of the organisation,
or a platform admin key naming any organisation with `org_id`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tollgate.billing.alerts import endpoints
from tollgate.billing.alerts import service as alerts
from tollgate.billing.alerts.models import WebhookEndpoint
from tollgate.billing.alerts.schemas import (
    AlertList,
    AlertOut,
    AttemptOut,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from tollgate.billing.alerts.secretbox import SecretBox
from tollgate.billing.deps import current_principal, get_sessions
from tollgate.common.auth_client import Principal
from tollgate.common.errors import Forbidden, ServiceUnavailable
from tollgate.common.money import micros_to_credits

router = APIRouter()


def get_secret_box(request: Request) -> SecretBox:
    box: SecretBox | None = getattr(request.app.state, "webhook_secrets", None)
    if box is None:
        raise ServiceUnavailable("Webhook secrets are not configured on this billing instance.")
    return box


def managed_org(principal: Principal, org_id: str | None) -> str:
    """The organisation the caller administers: any for a platform admin, else its own."""
    if principal.is_admin:
        return org_id or principal.org_id
    if not principal.is_org_admin:
        raise Forbidden(
            "Managing alerts needs an owner or admin of the organisation.", code="org_admin_required"
        )
    if org_id and org_id != principal.org_id:
        raise Forbidden("You can only manage your own organisation's alerts.", code="org_mismatch")
    return principal.org_id


def _endpoint_out(e: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=e.id,
        org_id=e.org_id,
        url=e.url,
        description=e.description,
        secret_hint=e.secret_hint,
        active=e.active,
        created_at=e.created_at,
    )


@router.post("/cost/webhooks", response_model=WebhookCreated, status_code=201)
async def create_webhook(
    body: WebhookCreate,
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
    box: SecretBox = Depends(get_secret_box),
) -> WebhookCreated:
    org_id = managed_org(principal, body.org_id)
    async with sessions.begin() as session:
        created = await endpoints.create(
            session, box, org_id=org_id, url=body.url, description=body.description
        )
    return WebhookCreated(**_endpoint_out(created.endpoint).model_dump(), secret=created.secret)


@router.get("/cost/webhooks", response_model=WebhookList)
async def list_webhooks(
    org_id: str | None = Query(default=None, min_length=1, max_length=200),
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> WebhookList:
    org = managed_org(principal, org_id)
    async with sessions() as session:
        rows = await endpoints.list_active(session, org)
    return WebhookList(data=[_endpoint_out(e) for e in rows])


@router.delete("/cost/webhooks/{endpoint_id}")
async def delete_webhook(
    endpoint_id: str = Path(min_length=1, max_length=100),
    org_id: str | None = Query(default=None, min_length=1, max_length=200),
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> dict[str, object]:
    org = managed_org(principal, org_id)
    async with sessions.begin() as session:
        await endpoints.delete(session, org_id=org, endpoint_id=endpoint_id)
    return {"id": endpoint_id, "deleted": True}


@router.get("/cost/alerts", response_model=AlertList)
async def list_alerts(
    org_id: str | None = Query(default=None, min_length=1, max_length=200),
    limit: int = Query(default=20, ge=1, le=100),
    before_id: int | None = Query(default=None, ge=1),
    principal: Principal = Depends(current_principal),
    sessions: async_sessionmaker[AsyncSession] = Depends(get_sessions),
) -> AlertList:
    org = managed_org(principal, org_id)
    async with sessions() as session:
        views = await alerts.list_alerts(session, org, limit=limit + 1, before_id=before_id)
    return AlertList(data=[_alert_out(v) for v in views[:limit]], has_more=len(views) > limit)


def _alert_out(view: alerts.AlertView) -> AlertOut:
    a = view.alert
    return AlertOut(
        id=a.id,
        alert_id=a.alert_id,
        org_id=a.org_id,
        key_id=a.key_id,
        kind=a.kind,
        budget_id=a.budget_id,
        period=a.period,
        threshold_pct=a.threshold_pct,
        spent=micros_to_credits(a.spent_micros),
        spent_micros=a.spent_micros,
        limit=micros_to_credits(a.limit_micros),
        limit_micros=a.limit_micros,
        balance_micros=a.balance_micros,
        fired_at=a.fired_at,
        deliveries=[
            DeliveryOut(
                id=d.id,
                channel=d.channel,
                target=d.target,
                status=d.status,
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                last_error=d.last_error,
                last_status_code=d.last_status_code,
                delivered_at=d.delivered_at,
                attempt_log=[
                    AttemptOut(
                        attempt=t.attempt,
                        outcome=t.outcome,
                        status_code=t.status_code,
                        error=t.error,
                        started_at=t.started_at,
                        finished_at=t.finished_at,
                    )
                    for t in tries
                ],
            )
            for d, tries in view.deliveries
        ],
    )
