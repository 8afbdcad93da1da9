"""Seed 004's chat records routes (the Bedrock-style gateway: `Authorization: Bearer <key>`, OpenAI's
error envelope), plus detail, deletion and purge routes of our own (docs/chat-records.md):

GET  /admin/session/list?q=&limit=10&offset=&key_id=        GET /admin/session/detail/{id}
GET  /admin/thread/list?q=&limit=10&offset=&key_id=&session_id=   GET /admin/thread/detail/{id}
DELETE /admin/session/{id}     POST /admin/session/purge {org_id}     POST /admin/session/retention/run
GET  /user/session/list?q=&limit=&offset=    GET /user/session/detail/{id}    DELETE /user/session/{id}
GET  /user/thread/list?q=&limit=&offset=&session_id=    GET /user/thread/detail/{id}

Thin: scopes and rules are in ChatRecordService.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from tollgate.analytics.dependencies import PrincipalDep, SessionDep
from tollgate.analytics.records.schemas import (
    BIGINT_MAX,
    Deleted,
    Purged,
    PurgeRequest,
    SessionDetail,
    SessionPage,
    SessionQuery,
    ThreadDetail,
    ThreadPage,
    ThreadQuery,
)
from tollgate.analytics.records.service import ChatRecordService, admin_scope, user_scope
from tollgate.common.auth_client import DELETE, READ, WRITE, Principal
from tollgate.common.errors import Forbidden

router = APIRouter(tags=["chat records"])

RecordId = Annotated[int, Path(ge=1, le=BIGINT_MAX)]


def record_service(request: Request) -> ChatRecordService:
    service: ChatRecordService = request.app.state.records
    return service


Records = Annotated[ChatRecordService, Depends(record_service)]


def _may(principal: Principal, permission: str) -> Principal:
    if not principal.may(permission):
        raise Forbidden(f"This API key lacks the `{permission}` permission.", code="permission_denied")
    return principal


# --- admin ---


@router.get("/admin/session/list", response_model=SessionPage)
async def admin_sessions(
    query: Annotated[SessionQuery, Query()], principal: PrincipalDep, db: SessionDep, records: Records
) -> SessionPage:
    return await records.list_sessions(db, admin_scope(_may(principal, READ)), query)


@router.get("/admin/session/detail/{session_id}", response_model=SessionDetail)
async def admin_session(
    session_id: RecordId, principal: PrincipalDep, db: SessionDep, records: Records
) -> SessionDetail:
    return await records.session_detail(db, admin_scope(_may(principal, READ)), session_id)


@router.delete("/admin/session/{session_id}", response_model=Deleted)
async def admin_delete_session(
    session_id: RecordId, principal: PrincipalDep, db: SessionDep, records: Records
) -> Deleted:
    await records.delete_session(db, admin_scope(_may(principal, DELETE)), session_id)
    return Deleted(id=session_id)


@router.post("/admin/session/purge", response_model=Purged)
async def admin_purge(
    body: PurgeRequest, principal: PrincipalDep, db: SessionDep, records: Records
) -> Purged:
    return await records.purge_org(db, _may(_may(principal, DELETE), WRITE), body.org_id)


@router.post("/admin/session/retention/run", response_model=Purged)
async def run_retention(principal: PrincipalDep, db: SessionDep, records: Records) -> Purged:
    """The retention purge now (it also runs every ANALYTICS_CHAT_PURGE_INTERVAL_S): platform admins."""
    if not _may(principal, WRITE).is_admin:
        raise Forbidden("Running the retention purge needs a platform admin key.", code="admin_required")
    return await records.purge_expired(db)


@router.get("/admin/thread/list", response_model=ThreadPage)
async def admin_threads(
    query: Annotated[ThreadQuery, Query()], principal: PrincipalDep, db: SessionDep, records: Records
) -> ThreadPage:
    return await records.list_threads(db, admin_scope(_may(principal, READ)), query)


@router.get("/admin/thread/detail/{thread_id}", response_model=ThreadDetail)
async def admin_thread(
    thread_id: RecordId, principal: PrincipalDep, db: SessionDep, records: Records
) -> ThreadDetail:
    return await records.thread_detail(db, admin_scope(_may(principal, READ)), thread_id)


# --- user ---


@router.get("/user/session/list", response_model=SessionPage)
async def my_sessions(
    query: Annotated[SessionQuery, Query()], principal: PrincipalDep, db: SessionDep, records: Records
) -> SessionPage:
    own = query.model_copy(update={"key_id": None})  # the caller's own records: no key filter
    return await records.list_sessions(db, user_scope(_may(principal, READ)), own)


@router.get("/user/session/detail/{session_id}", response_model=SessionDetail)
async def my_session(
    session_id: RecordId, principal: PrincipalDep, db: SessionDep, records: Records
) -> SessionDetail:
    return await records.session_detail(db, user_scope(_may(principal, READ)), session_id)


@router.delete("/user/session/{session_id}", response_model=Deleted)
async def my_delete_session(
    session_id: RecordId, principal: PrincipalDep, db: SessionDep, records: Records
) -> Deleted:
    await records.delete_session(db, user_scope(_may(principal, DELETE)), session_id)
    return Deleted(id=session_id)


@router.get("/user/thread/list", response_model=ThreadPage)
async def my_threads(
    query: Annotated[ThreadQuery, Query()], principal: PrincipalDep, db: SessionDep, records: Records
) -> ThreadPage:
    own = query.model_copy(update={"key_id": None})
    return await records.list_threads(db, user_scope(_may(principal, READ)), own)


@router.get("/user/thread/detail/{thread_id}", response_model=ThreadDetail)
async def my_thread(
    thread_id: RecordId, principal: PrincipalDep, db: SessionDep, records: Records
) -> ThreadDetail:
    return await records.thread_detail(db, user_scope(_may(principal, READ)), thread_id)
