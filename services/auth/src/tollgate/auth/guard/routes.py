"""The guard API's routes and the admin route that issues a key's secret. Thin handlers; the
rules are in GuardService. /api/guard/* errors answer `{"error": {"message", "code"}}`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request

from tollgate.auth.audit.deps import AdminAudit
from tollgate.auth.guard.schemas import (
    GuardAuthRequest,
    GuardAuthResponse,
    IssuedSecret,
    IssueSecretRequest,
    LogUsageRequest,
    LogUsageResponse,
)
from tollgate.auth.guard.service import GuardService
from tollgate.auth.web import Admin, Runtime, Tx
from tollgate.common.auth_client import Principal
from tollgate.common.errors import TollgateError
from tollgate.common.http import ErrorRenderer

PATH = "/api/guard"
router = APIRouter(tags=["guard"])


def guard_service(request: Request) -> GuardService:
    guard: GuardService = request.app.state.guard
    return guard


Guard = Annotated[GuardService, Depends(guard_service)]


async def guard_principal(
    rt: Runtime,
    guard: Guard,
    authorization: Annotated[str | None, Header()] = None,
    secretkey: Annotated[str | None, Header(alias="SecretKey")] = None,
    org: Annotated[str | None, Header(alias="Swarms-Organization")] = None,
) -> Principal:
    # Its own short session: log-usage then waits on Kafka without holding a database connection.
    # Committed: during a pepper rotation the check moves the key's and secret's hashes (peppers.py).
    async with rt.sessions.begin() as session:
        return await guard.check_pair(session, authorization, secretkey, org)


GuardPrincipal = Annotated[Principal, Depends(guard_principal)]


@router.post(f"{PATH}/auth", response_model=GuardAuthResponse)
async def guard_auth(body: GuardAuthRequest, principal: GuardPrincipal, guard: Guard) -> GuardAuthResponse:
    guard.require_model(principal, body.model)
    return GuardAuthResponse(
        key_id=principal.key_id,
        org_id=principal.org_id,
        user_id=principal.user_id,
        model=body.model,
        allowed=True,
    )


@router.post(f"{PATH}/log-usage", status_code=202, response_model=LogUsageResponse)
async def log_usage(
    body: LogUsageRequest,
    principal: GuardPrincipal,
    guard: Guard,
    rt: Runtime,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> LogUsageResponse:
    # the first report of an Idempotency-Key is committed before it is published (a retry re-sends
    # it); the Kafka wait holds no database connection
    async with rt.sessions.begin() as session:
        event_id, event = await guard.usage_report(session, principal, body, idempotency_key)
    await guard.publish_usage(principal, event)
    return LogUsageResponse(event_id=event_id)


@router.post("/admin/api-key/secret", response_model=IssuedSecret)
async def issue_secret(
    body: IssueSecretRequest, tx: Tx, rt: Runtime, guard: Guard, admin: Admin, audit: AdminAudit
) -> IssuedSecret:
    secret, rotated = await guard.issue_secret(tx.session, body.id, admin.org_id)
    org_id = await rt.keys.org_of(tx.session, body.id)
    await audit("api_key.secret", "api_key", body.id, {"rotated": rotated}, org_id=org_id)
    return IssuedSecret(id=body.id, secret_key=secret)


def with_guard_errors(fallback: ErrorRenderer) -> ErrorRenderer:
    """The guard API shows no error body; ours is the simplest useful one: `{"error": {message, code}}`."""

    def render(request: Request, exc: TollgateError) -> dict[str, Any]:
        path = request.url.path
        if path == PATH or path.startswith(PATH + "/"):
            return {"error": {"message": exc.message, "code": exc.code}}
        return fallback(request, exc)

    return render
