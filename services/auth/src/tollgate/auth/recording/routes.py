"""An organisation's chat records setting (docs/chat-records.md), beside /admin/org/limits and in
the Bedrock-style gateway's admin envelope:

GET  /admin/org/chat-recording?org_id=     POST /admin/org/chat-recording {org_id, mode, retention_days}

A platform admin acts on any organisation (org_id required); a team organisation's owner or admin
on their own (org_id optional, another's answers 404). Every call is audited; a change announces
the organisation's keys on auth.keys.v1 after the commit so gateways pick the new mode up at once.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from tollgate.auth.audit.deps import AdminAudit
from tollgate.auth.recording.schemas import RecordingQuery, RecordingRequest, RecordingSetting
from tollgate.auth.recording.service import RecordingService, setting_of
from tollgate.auth.web import Admin, AdminScope, Runtime, Tx
from tollgate.common.errors import InvalidRequest

router = APIRouter(prefix="/admin/org", tags=["chat records"])


def recording_service(request: Request) -> RecordingService:
    service: RecordingService = request.app.state.recording
    return service


Recording = Annotated[RecordingService, Depends(recording_service)]


def _target(admin: AdminScope, org_id: str | None) -> str:
    if org_id is not None:
        return org_id
    if admin.org_id is None:
        raise InvalidRequest("org_id is required with a platform admin key.", param="org_id")
    return admin.org_id


@router.get("/chat-recording", response_model=RecordingSetting)
async def get_recording(
    query: Annotated[RecordingQuery, Query()], tx: Tx, recording: Recording, admin: Admin
) -> RecordingSetting:
    org = await recording.organization(tx.session, _target(admin, query.org_id), admin.org_id, lock=False)
    return setting_of(org)


@router.post("/chat-recording", response_model=RecordingSetting)
async def set_recording(
    body: RecordingRequest, tx: Tx, rt: Runtime, recording: Recording, admin: Admin, audit: AdminAudit
) -> RecordingSetting:
    org = await recording.organization(tx.session, _target(admin, body.org_id), admin.org_id, lock=True)
    change = await recording.update(tx.session, org, body)
    details = {
        "changed": change.changed,
        "before": change.before.model_dump(exclude={"org_id"}),
        "after": change.after.model_dump(exclude={"org_id"}),
        "announced_keys": len(change.announcements),
    }
    await audit("org.chat_recording", "organization", org.id, details, org_id=org.id)
    if change.announcements:
        tx.after_commit(lambda: rt.events.publish(change.announcements))
    return change.after
