"""Authenticate over a real gRPC server and channel, against the scratch database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.grpc_server import AuthMetrics, AuthServicer
from tollgate.auth.keys.last_used import LastUsedRecorder
from tollgate.auth.keys.models import ApiKey
from tollgate.auth.keys.schemas import ApplyKeyRequest
from tollgate.auth.keys.service import Issued, KeyService, utcnow
from tollgate.common.auth_client import AuthClient
from tollgate.common.db import make_engine, make_sessionmaker
from tollgate.common.errors import Unauthenticated
from tollgate.common.grpc import make_channel, make_server
from tollgate.contracts.v1 import auth_pb2, auth_pb2_grpc


@pytest.fixture
async def channel(engine: AsyncEngine, key_service: KeyService) -> AsyncIterator[grpc.aio.Channel]:
    server = make_server("auth-test")
    read_sessions = make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
    auth_pb2_grpc.add_AuthServiceServicer_to_server(
        AuthServicer(read_sessions, key_service, AuthMetrics(CollectorRegistry())), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    chan = make_channel(f"127.0.0.1:{port}")
    try:
        yield chan
    finally:
        await chan.close()
        await server.stop(grace=None)


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(channel)


async def _issue(
    sessions: async_sessionmaker[AsyncSession], key_service: KeyService, **body: object
) -> Issued:
    async with sessions.begin() as session:
        return await key_service.apply(session, ApplyKeyRequest.model_validate({"name": "grpc", **body}))


async def test_valid_key_yields_its_principal_and_is_stamped_in_memory(
    stub: auth_pb2_grpc.AuthServiceStub,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    last_used: LastUsedRecorder,
) -> None:
    issued = await _issue(sessions, key_service, group_id=4, role="admin", month_quota=2.5)
    reply = await stub.Authenticate(auth_pb2.AuthenticateRequest(api_key=issued.api_key))
    assert reply.ok and reply.reason == ""
    p = reply.principal
    key = issued.view.key
    assert (p.key_id, p.org_id, p.user_id) == (key.id, key.org_id, key.user_id)
    assert (p.role, p.group_id) == ("admin", 4)
    assert list(p.permissions) == ["read", "write", "delete"]
    assert p.key_prefix == issued.api_key[:11]
    assert (p.month_quota_micros, p.expires_at_unix) == (2_500_000, 0)
    assert key.id in last_used.pending()
    assert await last_used.flush() >= 1
    async with sessions() as session:
        assert (await session.get(ApiKey, key.id)).last_used_at is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("api_key", ["tg_not_a_key", "", "x" * 10_000])
async def test_unknown_keys_are_refused_not_errors(stub: auth_pb2_grpc.AuthServiceStub, api_key: str) -> None:
    reply = await stub.Authenticate(auth_pb2.AuthenticateRequest(api_key=api_key))
    assert (reply.ok, reply.reason) == (False, "unknown_key")


@pytest.mark.parametrize(("column", "reason"), [("revoked_at", "revoked"), ("expires_at", "expired")])
async def test_revoked_and_expired_keys_are_refused_with_their_reason(
    stub: auth_pb2_grpc.AuthServiceStub,
    channel: grpc.aio.Channel,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    column: str,
    reason: str,
) -> None:
    issued = await _issue(sessions, key_service)
    async with sessions.begin() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == issued.view.key.id)
            .values({column: utcnow() - timedelta(seconds=1)})
        )
    reply = await stub.Authenticate(auth_pb2.AuthenticateRequest(api_key=issued.api_key))
    assert (reply.ok, reply.reason) == (False, reason)
    # and the shared client every other service uses turns that into a 401 error
    with pytest.raises(Unauthenticated):
        await AuthClient(channel).authenticate(issued.api_key)


async def test_database_outage_is_unavailable_not_a_refusal(key_service: KeyService) -> None:
    dead = make_engine("postgresql+psycopg://tollgate@127.0.0.1:1/nowhere", pool_size=1)
    server = make_server("auth-test")
    auth_pb2_grpc.add_AuthServiceServicer_to_server(
        AuthServicer(make_sessionmaker(dead), key_service, AuthMetrics(CollectorRegistry())), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await auth_pb2_grpc.AuthServiceStub(channel).Authenticate(
                    auth_pb2.AuthenticateRequest(api_key="tg_whatever")
                )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(grace=None)
        await dead.dispose()


async def test_principal_carries_the_users_role_in_the_keys_organisation(
    stub: auth_pb2_grpc.AuthServiceStub, sessions: async_sessionmaker[AsyncSession], key_service: KeyService
) -> None:
    owner = await _issue(sessions, key_service)  # the Bedrock-style gateway: owner of a personal organisation
    org_id = owner.view.key.org_id
    async with sessions.begin() as session:
        member = await key_service.apply(session, ApplyKeyRequest(name="joined"), org_id)
    bootstrap_like = await _issue(sessions, key_service, role="admin")
    async with sessions.begin() as session:  # a user-less key, like the bootstrap admin key
        await session.execute(
            update(ApiKey).where(ApiKey.id == bootstrap_like.view.key.id).values(user_id=None)
        )
    roles = []
    for issued in (owner, member, bootstrap_like):
        reply = await stub.Authenticate(auth_pb2.AuthenticateRequest(api_key=issued.api_key))
        assert reply.ok
        roles.append((reply.principal.org_id, reply.principal.org_role))
    assert roles == [(org_id, "owner"), (org_id, "member"), (bootstrap_like.view.key.org_id, "")]
