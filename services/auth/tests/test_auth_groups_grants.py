"""Model authorisation (the Bedrock-style gateway): grant routes, their ApiKeyChanged announcements, and the
principal Authenticate answers over real gRPC, on the scratch database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import grpc
import httpx
import pytest
from auth_groups_testkit import active_keys_in, admin_client, assert_openai_error, new_group, new_key
from auth_testkit import RecordingEvents
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.grants.service import ModelGrants
from tollgate.auth.grpc_server import AuthMetrics, AuthServicer
from tollgate.auth.keys.service import KeyService
from tollgate.auth.sessions.service import SessionService
from tollgate.common.auth_client import AuthClient, Principal
from tollgate.common.db import make_sessionmaker
from tollgate.common.grpc import make_channel, make_server
from tollgate.contracts.v1 import auth_pb2_grpc

AuthenticateOver = Callable[[ModelGrants], AbstractAsyncContextManager[AuthClient]]


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


@pytest.fixture
async def admin(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    identity: SessionService,
    events: RecordingEvents,
) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(engine, sessions, key_service, identity, events, ModelGrants()) as client:
        yield client


@pytest.fixture
def auth_over_grpc(engine: AsyncEngine, key_service: KeyService) -> AuthenticateOver:
    @asynccontextmanager
    async def serve(grants: ModelGrants) -> AsyncIterator[AuthClient]:
        server = make_server("auth-grants-test")
        read_sessions = make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
        servicer = AuthServicer(read_sessions, key_service, AuthMetrics(CollectorRegistry()), grants)
        auth_pb2_grpc.add_AuthServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = make_channel(f"127.0.0.1:{port}")
        try:
            yield AuthClient(channel)
        finally:
            await channel.close()
            await server.stop(grace=None)

    return serve


@pytest.fixture
async def auth(auth_over_grpc: AuthenticateOver) -> AsyncIterator[AuthClient]:
    async with auth_over_grpc(ModelGrants()) as client:
        yield client


async def test_no_grants_means_every_model(admin: httpx.AsyncClient, auth: AuthClient) -> None:
    key = await new_key(admin, group_id=(await new_group(admin))["id"])
    principal = await auth.authenticate(key["api_key"])
    assert (principal.models_restricted, principal.granted_models) == (False, frozenset())
    assert principal.may_use("any-model")
    listed = (await admin.get(f"/admin/api-key/models?key_id={key['id']}")).json()
    assert (listed["data"], listed["group_models"], listed["restricted"]) == ([], [], False)


async def test_group_grants_reach_its_keys_and_are_announced(
    admin: httpx.AsyncClient, auth: AuthClient, events: RecordingEvents
) -> None:
    group = await new_group(admin)
    one, two = await new_key(admin, group_id=group["id"]), await new_key(admin, group_id=group["id"])
    outsider = await new_key(admin)
    revoked = await new_key(admin, group_id=group["id"])
    await admin.post("/admin/api-key/delete", json={"id": revoked["id"]})
    events.published.clear()

    resp = await admin.post(
        "/admin/group/models/authorize", json={"group_id": group["id"], "models": ["gpt-a", "gpt-b", "gpt-a"]}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [g["model"] for g in body["data"]] == ["gpt-a", "gpt-b"] and body["changed"] == ["gpt-a", "gpt-b"]
    # every active key of the group, and only those, is announced as updated
    members = await active_keys_in(admin, group["id"])
    assert {one["id"], two["id"]} <= members and not {outsider["id"], revoked["id"]} & members
    assert sorted(c.key_id for c in events.published) == sorted(members)
    assert {c.change for c in events.published} == {"updated"}
    assert all(c.key_hash and len(c.key_hash) > 20 for c in events.published)

    principal = await auth.authenticate(one["api_key"])
    assert (principal.models_restricted, principal.granted_models) == (True, frozenset({"gpt-a", "gpt-b"}))
    assert principal.may_use("gpt-a") and not principal.may_use("gpt-c")
    assert not (await auth.authenticate(outsider["api_key"])).models_restricted

    # granting again changes nothing and announces nothing
    events.published.clear()
    again = await admin.post(
        "/admin/group/models/authorize", json={"group_id": group["id"], "models": ["gpt-a"]}
    )
    assert again.json()["changed"] == [] and events.published == []

    listed = (await admin.get(f"/admin/group/models?group_id={group['id']}")).json()
    assert [g["model"] for g in listed["data"]] == ["gpt-a", "gpt-b"]


async def test_key_grants_add_to_its_groups(
    admin: httpx.AsyncClient, auth: AuthClient, events: RecordingEvents
) -> None:
    group = await new_group(admin)
    key = await new_key(admin, group_id=group["id"])
    neighbour = await new_key(admin, group_id=group["id"])
    await admin.post("/admin/group/models/authorize", json={"group_id": group["id"], "models": ["shared"]})
    events.published.clear()

    resp = await admin.post("/admin/api-key/models/authorize", json={"key_id": key["id"], "models": ["own"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [g["model"] for g in body["data"]] == ["own"]
    assert [g["model"] for g in body["group_models"]] == ["shared"]
    assert (body["group_id"], body["restricted"], body["changed"]) == (group["id"], True, ["own"])
    assert [(c.key_id, c.change) for c in events.published] == [(key["id"], "updated")]

    assert (await auth.authenticate(key["api_key"])).granted_models == {"own", "shared"}
    assert (await auth.authenticate(neighbour["api_key"])).granted_models == {"shared"}


async def test_deauthorize_removes_and_announces(
    admin: httpx.AsyncClient, auth: AuthClient, events: RecordingEvents
) -> None:
    group = await new_group(admin)
    key = await new_key(admin, group_id=group["id"])
    await admin.post("/admin/group/models/authorize", json={"group_id": group["id"], "models": ["m1", "m2"]})
    await admin.post("/admin/api-key/models/authorize", json={"key_id": key["id"], "models": ["k1"]})
    events.published.clear()

    resp = await admin.post(
        "/admin/group/models/deauthorize", json={"group_id": group["id"], "models": ["m1", "never"]}
    )
    assert resp.json()["changed"] == ["m1"] and [g["model"] for g in resp.json()["data"]] == ["m2"]
    members = await active_keys_in(admin, group["id"])
    assert key["id"] in members and sorted(c.key_id for c in events.published) == sorted(members)
    assert (await auth.authenticate(key["api_key"])).granted_models == {"m2", "k1"}

    events.published.clear()
    await admin.post("/admin/group/models/deauthorize", json={"group_id": group["id"], "models": ["m2"]})
    await admin.post("/admin/api-key/models/deauthorize", json={"key_id": key["id"], "models": ["k1"]})
    # the group's members, then the key alone
    assert sorted(c.key_id for c in events.published) == sorted([*members, key["id"]])
    # nothing granted any more: every model again
    assert not (await auth.authenticate(key["api_key"])).models_restricted


async def test_ungranted_means_none_when_configured(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    identity: SessionService,
    auth_over_grpc: AuthenticateOver,
) -> None:
    strict = ModelGrants(ungranted_means_all=False)
    async with (
        admin_client(engine, sessions, key_service, identity, RecordingEvents(), strict) as admin,
        auth_over_grpc(strict) as auth,
    ):
        key = await new_key(admin)
        principal: Principal = await auth.authenticate(key["api_key"])
        assert (principal.models_restricted, principal.granted_models) == (True, frozenset())
        assert not principal.may_use("anything")
        assert (await admin.get(f"/admin/api-key/models?key_id={key['id']}")).json()["restricted"] is True
        await admin.post("/admin/api-key/models/authorize", json={"key_id": key["id"], "models": ["only"]})
        assert (await auth.authenticate(key["api_key"])).granted_models == {"only"}


async def test_unknown_subjects_and_bad_bodies_are_refused(admin: httpx.AsyncClient) -> None:
    missing_group = await admin.post(
        "/admin/group/models/authorize", json={"group_id": 2_000_000_000, "models": ["m"]}
    )
    assert_openai_error(missing_group, 404, "group_not_found")
    assert_openai_error(await admin.get("/admin/group/models?group_id=2000000000"), 404, "group_not_found")
    missing_key = await admin.post(
        "/admin/api-key/models/authorize", json={"key_id": 9_000_000_000, "models": ["m"]}
    )
    assert_openai_error(missing_key, 404, "api_key_not_found")
    revoked = await new_key(admin)
    await admin.post("/admin/api-key/delete", json={"id": revoked["id"]})
    assert_openai_error(
        await admin.get(f"/admin/api-key/models?key_id={revoked['id']}"), 404, "api_key_not_found"
    )
    group = await new_group(admin)
    for body in (
        {"group_id": group["id"], "models": []},
        {"group_id": group["id"], "models": [""]},
        {"group_id": group["id"], "models": "gpt"},
        {"group_id": group["id"]},
        {"group_id": "1", "models": ["m"]},
    ):
        resp = await admin.post("/admin/group/models/authorize", json=body)
        assert resp.status_code == 400, (body, resp.text)
    assert (await admin.get("/admin/group/models")).status_code == 400


async def test_grant_routes_need_an_admin_key(admin: httpx.AsyncClient) -> None:
    user = await new_key(admin)
    as_user = {"Authorization": f"Bearer {user['api_key']}"}
    resp = await admin.post(
        "/admin/api-key/models/authorize", json={"key_id": user["id"], "models": ["m"]}, headers=as_user
    )
    assert_openai_error(resp, 403, "admin_required")
    assert_openai_error(
        await admin.get("/admin/group/models?group_id=1", headers=as_user), 403, "admin_required"
    )


async def test_authenticate_reports_unavailable_not_unknown_when_the_grant_lookup_fails(
    admin: httpx.AsyncClient, auth_over_grpc: AuthenticateOver
) -> None:
    class BrokenGrants(ModelGrants):
        async def restrict(self, session: AsyncSession, principal: Principal) -> Principal:
            raise OperationalError("SELECT", {}, Exception("connection lost"))

    key = await new_key(admin)
    async with auth_over_grpc(BrokenGrants()) as auth:
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await auth.authenticate(key["api_key"])
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
