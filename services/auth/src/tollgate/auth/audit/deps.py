"""Wiring the audit log into routes: the actor comes from the request (admin key or signed-in
user), the session from the request's transaction, so records commit with the action itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request

from tollgate.auth.audit.service import Actor, AuditLog
from tollgate.auth.web import Admin, AuthRuntime, Runtime, Tx, client_ip


def request_actor(
    request: Request, rt: AuthRuntime, *, key_id: int | None, user_id: str | None, org_id: str | None
) -> Actor:
    return Actor(
        key_id=key_id,
        user_id=user_id,
        org_id=org_id,
        # The gateway sets X-Forwarded-For to the client's address; trusted only from our proxies.
        ip=client_ip(request, rt.trusted_proxies),
        request_id=getattr(request.state, "request_id", None),
    )


def audit_log(request: Request) -> AuditLog:
    log: AuditLog = request.app.state.audit
    return log


AuditLogDep = Annotated[AuditLog, Depends(audit_log)]


class Recorder:
    """The audit log bound to one request's transaction and actor."""

    def __init__(self, log: AuditLog, tx: Any, actor: Actor) -> None:
        self._log = log
        self._tx = tx
        self.actor = actor

    async def __call__(
        self,
        action: str,
        target_type: str,
        target_id: object | None,
        details: Mapping[str, Any] | None = None,
        *,
        org_id: str | None = None,
    ) -> None:
        """`org_id`: the organisation the action concerns; None for platform-wide objects."""
        await self._log.record(
            self._tx.session, self.actor, action, target_type, target_id, details, org_id=org_id
        )


async def admin_recorder(request: Request, tx: Tx, rt: Runtime, admin: Admin, log: AuditLogDep) -> Recorder:
    p = admin.principal
    actor = request_actor(request, rt, key_id=p.key_id, user_id=p.user_id, org_id=p.org_id)
    return Recorder(log, tx, actor)


# An admin route's credential check and its audit recorder in one dependency.
AdminAudit = Annotated[Recorder, Depends(admin_recorder)]
