"""Admin groups (the Bedrock-style gateway): list, save (create or update), delete, on the scratch
database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from auth_groups_testkit import active_keys_in, admin_client, assert_openai_error, new_group, new_key, unique
from auth_testkit import RecordingEvents
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.accounts.models import User
from tollgate.auth.grants.service import ModelGrants
from tollgate.auth.keys.service import KeyService
from tollgate.auth.sessions.service import SessionService


@pytest.fixture
async def admin(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    identity: SessionService,
) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(engine, sessions, key_service, identity, RecordingEvents(), ModelGrants()) as c:
        yield c


async def test_the_default_group_of_the_bedrock_gateway_exists(admin: httpx.AsyncClient) -> None:
    listed = (await admin.get("/admin/group/list?q=default&limit=10&offset=")).json()
    assert [(g["id"], g["name"]) for g in listed["data"]] == [(1, "default")]


async def test_save_creates_updates_by_id_and_by_name(admin: httpx.AsyncClient) -> None:
    created = await new_group(admin, description="the research team")
    assert created["id"] > 1 and created["description"] == "the research team"
    assert set(created) == {"id", "name", "description", "created_at"}

    renamed = await admin.post(
        "/admin/group/save", json={"id": created["id"], "name": created["name"] + "-x"}
    )
    assert renamed.status_code == 200
    # description left out stays as it was
    assert (renamed.json()["name"], renamed.json()["description"]) == (
        created["name"] + "-x",
        "the research team",
    )

    again = await admin.post("/admin/group/save", json={"name": created["name"] + "-x", "description": "new"})
    assert (again.json()["id"], again.json()["description"]) == (created["id"], "new")


async def test_save_refuses_a_taken_name_and_an_unknown_id(admin: httpx.AsyncClient) -> None:
    first, second = await new_group(admin), await new_group(admin)
    clash = await admin.post("/admin/group/save", json={"id": second["id"], "name": first["name"]})
    assert_openai_error(clash, 409, "group_name_taken")
    assert clash.json()["error"]["param"] == "name"
    missing = await admin.post("/admin/group/save", json={"id": 2_000_000_000, "name": unique("x")})
    assert_openai_error(missing, 404, "group_not_found")
    # the failed rename changed nothing
    listed = (await admin.get(f"/admin/group/list?q={second['name']}")).json()
    assert listed["total"] == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"name": ""}, {"name": 5}, {"name": "a", "id": 0}, {"name": "a", "colour": "red"}],
)
async def test_save_rejects_malformed_bodies(admin: httpx.AsyncClient, body: dict[str, object]) -> None:
    resp = await admin.post("/admin/group/save", json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["type"] == "invalid_request_error"


async def test_list_filters_and_pages(admin: httpx.AsyncClient) -> None:
    tag = unique("page")
    made = [await new_group(admin, name=f"{tag}-{i}") for i in range(3)]
    page = (await admin.get(f"/admin/group/list?q={tag}&limit=2&offset=")).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert [g["id"] for g in page["data"]] == [made[0]["id"], made[1]["id"]]
    rest = (await admin.get(f"/admin/group/list?q={tag}&limit=2&offset=2")).json()
    assert [g["id"] for g in rest["data"]] == [made[2]["id"]]
    # LIKE wildcards in q are taken literally
    assert (await admin.get("/admin/group/list?q=%25%25%25")).json()["total"] == 0
    assert (await admin.get("/admin/group/list?limit=0")).status_code == 400


async def test_delete_refuses_a_group_with_active_keys_and_detaches_users(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    group = await new_group(admin)
    key = await new_key(admin, group_id=group["id"])
    refused = await admin.post("/admin/group/delete", json={"id": group["id"]})
    assert_openai_error(refused, 409, "group_in_use")

    members = await active_keys_in(admin, group["id"])
    assert key["id"] in members
    for key_id in members:
        assert (await admin.post("/admin/api-key/delete", json={"id": key_id})).status_code == 200
    deleted = await admin.post("/admin/group/delete", json={"id": group["id"]})
    assert deleted.status_code == 200 and deleted.json() == {"id": group["id"], "deleted": True}
    async with sessions() as session:
        assert (
            await session.execute(select(User.group_id).where(User.id == key["user_id"]))
        ).scalar_one() is None
    again = await admin.post("/admin/group/delete", json={"id": group["id"]})
    assert_openai_error(again, 404, "group_not_found")


async def test_group_routes_need_an_admin_key(admin: httpx.AsyncClient) -> None:
    user = await new_key(admin)
    as_user = {"Authorization": f"Bearer {user['api_key']}"}
    assert_openai_error(await admin.get("/admin/group/list", headers=as_user), 403, "admin_required")
    denied = await admin.post("/admin/group/save", json={"name": unique("x")}, headers=as_user)
    assert_openai_error(denied, 403, "admin_required")
    anonymous = await admin.post("/admin/group/delete", json={"id": 1}, headers={"Authorization": ""})
    assert anonymous.status_code == 401
