"""An organisation's chat records setting (docs/chat-records.md) over ASGI, on the scratch
PostgreSQL: validation, the audit record, the announcements that drop the gateway's cached
principals, and the mode and retention Authenticate puts in the principal."""

from __future__ import annotations

import httpx
from auth_testkit import RecordingEvents
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_auth_limits_api import _apply, _audit, _principal, admin, events  # noqa: F401

from tollgate.auth.keys.service import KeyService


async def test_setting_reaches_the_principal_and_is_audited_and_announced(
    admin: httpx.AsyncClient,  # noqa: F811
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    events: RecordingEvents,  # noqa: F811
) -> None:
    key = await _apply(admin)
    org_id = key["org_id"]
    before = await _principal(sessions, key_service, key["api_key"])
    assert (before.chat_recording, before.chat_retention_days, before.records_chats) == ("off", 30, False)
    current = await admin.get("/admin/org/chat-recording", params={"org_id": org_id})
    assert current.json() == {"org_id": org_id, "mode": "off", "retention_days": 30}
    events.published.clear()

    resp = await admin.post(
        "/admin/org/chat-recording", json={"org_id": org_id, "mode": "full", "retention_days": 7}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"org_id": org_id, "mode": "full", "retention_days": 7}
    assert [c.key_id for c in events.published] == [key["id"]]
    after = await _principal(sessions, key_service, key["api_key"])
    assert (after.chat_recording, after.chat_retention_days, after.records_chats) == ("full", 7, True)
    (record,) = await _audit(sessions, "org.chat_recording", org_id)
    assert record.details["after"] == {"mode": "full", "retention_days": 7}

    events.published.clear()  # the same values again: audited, nothing announced
    same = await admin.post("/admin/org/chat-recording", json={"org_id": org_id, "mode": "full"})
    assert same.status_code == 200 and events.published == []


async def test_bad_values_and_scopes_are_refused(admin: httpx.AsyncClient) -> None:  # noqa: F811
    key = await _apply(admin)
    for body in (
        {"org_id": key["org_id"], "mode": "everything"},
        {"org_id": key["org_id"], "retention_days": 0},
        {"org_id": key["org_id"], "mode": "full", "extra": 1},
    ):
        resp = await admin.post("/admin/org/chat-recording", json=body)
        assert resp.status_code == 400, resp.text
        assert set(resp.json()["error"]) >= {"message", "type", "code"}
    missing = await admin.post("/admin/org/chat-recording", json={"mode": "full"})
    assert missing.status_code == 400  # a platform admin names the organisation
    unknown = await admin.get("/admin/org/chat-recording", params={"org_id": "org_nope"})
    assert unknown.status_code == 404
    user = await admin.get(
        "/admin/org/chat-recording",
        params={"org_id": key["org_id"]},
        headers={"Authorization": f"Bearer {key['api_key']}"},
    )
    assert user.status_code == 403  # a personal organisation's key is no admin here
