"""The HTTP app: shared plumbing from create_app plus auth's routers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from tollgate.auth.audit.routes import router as audit_router
from tollgate.auth.audit.service import AuditLog
from tollgate.auth.envelope import auth_error_renderer, retry_after_handler
from tollgate.auth.grants.routes import router as grants_router
from tollgate.auth.grants.service import ModelGrants
from tollgate.auth.groups.routes import router as groups_router
from tollgate.auth.guard.routes import router as guard_router
from tollgate.auth.guard.routes import with_guard_errors
from tollgate.auth.guard.service import GuardService
from tollgate.auth.guard.usage import NoSender, RecordSender
from tollgate.auth.keys.credit_chat_routes import router as credit_chat_keys_router
from tollgate.auth.keys.credit_chat_routes import with_credit_chat_errors
from tollgate.auth.keys.routes import router as keys_router
from tollgate.auth.keys.service import utcnow
from tollgate.auth.keys.user_routes import router as user_keys_router
from tollgate.auth.limits.routes import router as limits_router
from tollgate.auth.limits.service import LimitService
from tollgate.auth.orgs.routes import org_change_counter
from tollgate.auth.orgs.routes import router as orgs_router
from tollgate.auth.orgs.service import OrgService
from tollgate.auth.recording.routes import router as recording_router
from tollgate.auth.recording.service import RecordingService
from tollgate.auth.sessions.errors import LoginThrottled
from tollgate.auth.sessions.routes import router as sessions_router
from tollgate.auth.web import AuthRuntime
from tollgate.common.db import database_health
from tollgate.common.http import create_app

HEALTH_TIMEOUT_S = 2.0
DEFAULT_INVITATION_TTL = timedelta(days=7)  # a probe must answer quickly, whatever the database does


def build_app(
    rt: AuthRuntime,
    engine: AsyncEngine,
    registry: CollectorRegistry,
    model_grants: ModelGrants | None = None,
    usage_sender: RecordSender | None = None,
    invitation_ttl: timedelta = DEFAULT_INVITATION_TTL,
    guard_clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    # /auth/* answers in SloughGPT's envelope, /api/keys in the credit chat API's, /api/guard/* in the guard's
    # own; the admin routes keep OpenAI's.
    renderer = with_guard_errors(with_credit_chat_errors(auth_error_renderer))
    app = create_app(
        "auth", registry, error_renderer=renderer, health_check=database_health(engine, HEALTH_TIMEOUT_S)
    )
    app.add_exception_handler(LoginThrottled, retry_after_handler)
    app.state.runtime = rt
    app.state.model_grants = model_grants or ModelGrants()
    app.state.audit = AuditLog()
    # Without a sender (apps built for other tests) log-usage answers 503, never a silent drop.
    app.state.guard = GuardService(
        rt.keys, app.state.model_grants, usage_sender or NoSender(), clock=guard_clock or utcnow
    )
    app.state.orgs = OrgService(rt.keys, invitation_ttl)
    app.state.org_changes = org_change_counter(registry)
    # The same default tier as Authenticate's (AUTH_DEFAULT_RATE_TIER), so answers match the principal.
    app.state.limits = LimitService(rt.keys.default_rate_tier)
    app.state.recording = RecordingService()
    app.include_router(keys_router)
    app.include_router(user_keys_router)
    app.include_router(credit_chat_keys_router)
    app.include_router(sessions_router)
    app.include_router(groups_router)
    app.include_router(grants_router)
    app.include_router(guard_router)
    app.include_router(audit_router)
    app.include_router(orgs_router)
    app.include_router(limits_router)
    app.include_router(recording_router)
    return app
