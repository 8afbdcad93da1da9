"""GET /admin/audit/list?action=&actor_key_id=&limit=&offset= for admin keys: a platform admin
reads every record, a team organisation's owner or admin only the records concerning it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tollgate.auth.audit.deps import AuditLogDep
from tollgate.auth.audit.schemas import AuditInfo, AuditPage, AuditQuery
from tollgate.auth.web import Admin, Tx

router = APIRouter(prefix="/admin/audit", tags=["audit"])


@router.get("/list", response_model=AuditPage)
async def list_audit(
    query: Annotated[AuditQuery, Query()], tx: Tx, log: AuditLogDep, admin: Admin
) -> AuditPage:
    rows, total = await log.search(
        tx.session,
        action=query.action,
        actor_key_id=query.actor_key_id,
        org_id=admin.org_id,
        limit=query.limit,
        offset=query.offset,
    )
    return AuditPage(data=[AuditInfo.build(e) for e in rows], total=total)
