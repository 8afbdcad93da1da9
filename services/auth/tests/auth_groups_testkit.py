"""Helpers of the group and model-grant tests: an admin client over ASGI on the scratch database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from auth_testkit import RecordingEvents
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.app import build_app
from tollgate.auth.grants.service import ModelGrants
from tollgate.auth.keys.schemas import ApplyKeyRequest
from tollgate.auth.keys.service import KeyService
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.web import AuthRuntime


@asynccontextmanager
async def admin_client(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    identity: SessionService,
    events: RecordingEvents,
    grants: ModelGrants,
) -> AsyncIterator[httpx.AsyncClient]:
    """The whole auth app, authorised with a fresh admin key (not the bootstrap one, which the
    other tests rotate)."""
    async with sessions.begin() as session:
        issued = await key_service.apply(session, ApplyKeyRequest(name="groups-admin", role="admin"))
    app = build_app(AuthRuntime(sessions, key_service, events, identity), engine, CollectorRegistry(), grants)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://auth") as client:
        client.headers["Authorization"] = f"Bearer {issued.api_key}"
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_group(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique("team"))
    resp = await admin.post("/admin/group/save", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def new_key(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique("user"))
    resp = await admin.post("/admin/api-key/apply", json=body)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def assert_openai_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["message"], error


async def active_keys_in(admin: httpx.AsyncClient, group_id: int) -> set[int]:
    """Every active key naming the group; other tests' keys may name small group ids before the
    group exists (allowed, see docs/identity.md), so the tests never assume a group is empty."""
    resp = await admin.get(f"/admin/api-key/list?group_id={group_id}&limit=100")
    assert resp.status_code == 200, resp.text
    return {k["id"] for k in resp.json()["data"]}
