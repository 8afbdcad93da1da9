"""The guard API's routes over ASGI on a scratch PostgreSQL; Kafka is a recording fake sender."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from auth_testkit import RecordingEvents
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tollgate.auth.app import build_app
from tollgate.auth.guard.retention import GuardReportRetention
from tollgate.auth.keys.bootstrap import ensure_bootstrap_admin
from tollgate.auth.keys.keygen import KeyHasher
from tollgate.auth.keys.service import KeyService, utcnow
from tollgate.auth.sessions.service import SessionService
from tollgate.auth.web import AuthRuntime
from tollgate.common.kafka import TOPIC_USAGE
from tollgate.contracts.v1 import events_pb2

ADMIN_KEY = "tg_admin_key_for_the_guard_tests_0123456789"


class FakeSender:
    """Stands in for the Kafka producer: records what would go to usage.v1, or refuses it."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []
        self.up = True

    async def send_record(
        self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]
    ) -> bool:
        if not self.up:
            return False
        self.records.append((topic, value, key, headers))
        return True

    def events(self) -> list[events_pb2.UsageRecorded]:
        return [events_pb2.UsageRecorded.FromString(value) for _, value, _, _ in self.records]


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


class Clock:
    """The guard's clock: the real time unless a test moves it."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime:
        return self.at or utcnow()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def admin(
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    key_service: KeyService,
    hasher: KeyHasher,
    identity: SessionService,
    sender: FakeSender,
    clock: Clock,
) -> AsyncIterator[httpx.AsyncClient]:
    async with sessions.begin() as session:
        await ensure_bootstrap_admin(session, hasher, ADMIN_KEY, utcnow())
    rt = AuthRuntime(sessions, key_service, RecordingEvents(), identity)
    app = build_app(rt, engine, CollectorRegistry(), usage_sender=sender, guard_clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth") as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_KEY}"
        yield client


async def _key_with_secret(admin: httpx.AsyncClient) -> dict[str, Any]:
    resp = await admin.post("/admin/api-key/apply", json={"name": f"g-{uuid.uuid4().hex[:8]}", "group_id": 1})
    assert resp.status_code == 200, resp.text
    key = resp.json()
    secret = await admin.post("/admin/api-key/secret", json={"id": key["id"]})
    assert secret.status_code == 200, secret.text
    assert secret.json()["id"] == key["id"] and secret.json()["secret_key"].startswith("tgs_")
    return {**key, "secret_key": secret.json()["secret_key"]}


def _pair(key: dict[str, Any], *, bearer: bool = False, secret: str | None = None) -> dict[str, str]:
    auth = f"Bearer {key['api_key']}" if bearer else key["api_key"]
    return {"Authorization": auth, "SecretKey": key["secret_key"] if secret is None else secret}


AUTH_BODY = {"model": "cogvlm-chat-17b", "messages": [{"role": "user", "content": "a poem"}]}
USAGE_BODY = {
    "model": "cogvlm-chat-17b",
    "temperature": 0.7,
    "input_cost": 0.5,
    "output_cost": 0.3,
    "total_cost": 0.8,
    "input_tokens": 100,
    "output_tokens": 80,
    "max_tokens": 200,
    "messages": [],
}


@pytest.mark.parametrize("bearer", [False, True])
async def test_guard_auth_accepts_the_pair_with_or_without_bearer(
    admin: httpx.AsyncClient, bearer: bool
) -> None:
    key = await _key_with_secret(admin)
    resp = await admin.post("/api/guard/auth", json=AUTH_BODY, headers=_pair(key, bearer=bearer))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "authenticated": True,
        "key_id": key["id"],
        "org_id": key["org_id"],
        "user_id": key["user_id"],
        "model": "cogvlm-chat-17b",
        "allowed": True,
    }


async def test_guard_auth_refuses_bad_pairs_alike(admin: httpx.AsyncClient) -> None:
    key = await _key_with_secret(admin)
    other = await _key_with_secret(admin)
    no_secret = (await admin.post("/admin/api-key/apply", json={"name": "nosecret"})).json()
    cases = [
        _pair(key, secret="tgs_wrong"),
        _pair(key, secret=""),
        {"Authorization": key["api_key"]},
        _pair(key, secret=other["secret_key"]),  # someone else's secret
        {"Authorization": no_secret["api_key"], "SecretKey": "tgs_anything"},
        {"Authorization": "tg_unknown", "SecretKey": key["secret_key"]},
    ]
    for headers in cases:
        resp = await admin.post("/api/guard/auth", json=AUTH_BODY, headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.json() == {
            "error": {"message": resp.json()["error"]["message"], "code": "invalid_credentials"}
        }


async def test_secret_rotation_retires_the_old_secret_and_is_stored_hashed(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], hasher: KeyHasher
) -> None:
    key = await _key_with_secret(admin)
    rotated = (await admin.post("/admin/api-key/secret", json={"id": key["id"]})).json()["secret_key"]
    assert rotated != key["secret_key"]
    old = await admin.post("/api/guard/auth", json=AUTH_BODY, headers=_pair(key))
    new = await admin.post("/api/guard/auth", json=AUTH_BODY, headers=_pair(key, secret=rotated))
    assert (old.status_code, new.status_code) == (401, 200)
    async with sessions() as session:
        stored = (
            await session.execute(text("SELECT secret_hash FROM api_keys WHERE id = :id"), {"id": key["id"]})
        ).scalar_one()
    assert stored == hasher.hash(rotated) and rotated not in stored
    missing = await admin.post("/admin/api-key/secret", json={"id": 999_999_999})
    assert missing.status_code == 404


async def test_guard_auth_403_for_a_model_not_granted_and_for_another_org(admin: httpx.AsyncClient) -> None:
    key = await _key_with_secret(admin)
    grant = await admin.post(
        "/admin/api-key/models/authorize", json={"key_id": key["id"], "models": ["m-ok"]}
    )
    assert grant.status_code == 200, grant.text
    ok = await admin.post("/api/guard/auth", json={**AUTH_BODY, "model": "m-ok"}, headers=_pair(key))
    denied = await admin.post("/api/guard/auth", json=AUTH_BODY, headers=_pair(key))
    assert ok.status_code == 200 and ok.json()["allowed"] is True
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "model_not_allowed"
    headers = {**_pair(key), "Swarms-Organization": "org_someone_else"}
    other_org = await admin.post("/api/guard/auth", json={**AUTH_BODY, "model": "m-ok"}, headers=headers)
    assert other_org.status_code == 403 and other_org.json()["error"]["code"] == "organization_mismatch"


async def test_log_usage_publishes_usage_recorded(admin: httpx.AsyncClient, sender: FakeSender) -> None:
    key = await _key_with_secret(admin)
    resp = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=_pair(key))
    assert resp.status_code == 202, resp.text
    assert resp.json()["logged"] is True
    [(topic, _, record_key, headers)] = sender.records
    [event] = sender.events()
    assert topic == TOPIC_USAGE and record_key == key["org_id"].encode()
    assert ("event-type", b"UsageRecorded") in headers
    assert event.event_id == resp.json()["event_id"] and event.event_id.startswith("guard_")
    assert (event.org_id, event.key_id, event.user_id) == (key["org_id"], key["id"], key["user_id"])
    assert (event.model, event.tokens_in, event.tokens_out) == ("cogvlm-chat-17b", 100, 80)
    assert event.cost_micros == 800_000 and event.status == "ok" and event.hold_id == ""
    assert event.endpoint == "/api/guard/log-usage"


async def test_idempotency_key_gives_one_event_id_per_key(
    admin: httpx.AsyncClient, sender: FakeSender
) -> None:
    key = await _key_with_secret(admin)
    other = await _key_with_secret(admin)
    ids = set()
    for _ in range(3):
        resp = await admin.post(
            "/api/guard/log-usage", json=USAGE_BODY, headers={**_pair(key), "Idempotency-Key": "abc"}
        )
        ids.add(resp.json()["event_id"])
    theirs = await admin.post(
        "/api/guard/log-usage", json=USAGE_BODY, headers={**_pair(other), "Idempotency-Key": "abc"}
    )
    fresh = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=_pair(key))
    assert len(ids) == 1 and "abc" not in next(iter(ids))
    assert theirs.json()["event_id"] not in ids and fresh.json()["event_id"] not in ids


async def test_a_retry_re_sends_the_first_attempt_s_event_whatever_the_clock_says(
    admin: httpx.AsyncClient, sender: FakeSender, clock: Clock
) -> None:
    """Billing partitions settlement rows by the event's UTC day and analytics its facts by the
    event's time: every copy of one event must carry the first attempt's time. Retries an hour, a
    day (across UTC midnight) and a second later, and one racing the others, publish the first
    attempt's bytes."""
    key = await _key_with_secret(admin)
    headers = {**_pair(key), "Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    first_at = datetime(2026, 12, 6, 23, 59, 30, tzinfo=UTC)
    clock.at = first_at
    first = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=headers)
    assert first.status_code == 202, first.text
    for later in (timedelta(hours=1), timedelta(days=1), timedelta(seconds=1)):
        clock.at = first_at + later
        retry = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=headers)
        assert retry.status_code == 202, retry.text
        assert retry.json()["event_id"] == first.json()["event_id"]
    clock.at = first_at + timedelta(minutes=5)
    racing = await asyncio.gather(
        *(admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=headers) for _ in range(4))
    )
    assert [r.status_code for r in racing] == [202] * 4
    values = [value for _, value, _, _ in sender.records]
    assert len(values) == 8 and len(set(values)) == 1  # byte-identical copies
    first_ms = int(first_at.timestamp() * 1000)
    assert {(e.started_at_unix_ms, e.finished_at_unix_ms) for e in sender.events()} == {(first_ms, first_ms)}

    # without an Idempotency-Key every call is a new event, stamped now
    fresh = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=_pair(key))
    assert sender.events()[-1].event_id == fresh.json()["event_id"] != first.json()["event_id"]
    assert sender.events()[-1].finished_at_unix_ms == int(clock.at.timestamp() * 1000)


async def test_a_retry_that_reports_something_else_is_refused_and_not_published(
    admin: httpx.AsyncClient, sender: FakeSender
) -> None:
    key = await _key_with_secret(admin)
    headers = {**_pair(key), "Idempotency-Key": "same-key"}
    assert (await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=headers)).status_code == 202
    for changed in ({"total_cost": 0.9}, {"input_tokens": 101}, {"model": "other-model"}):
        resp = await admin.post("/api/guard/log-usage", json={**USAGE_BODY, **changed}, headers=headers)
        assert resp.status_code == 409, resp.text
        assert resp.json()["error"]["code"] == "idempotency_key_reused"
    assert len(sender.records) == 1


async def test_a_report_kept_while_kafka_refused_is_the_one_the_retry_publishes(
    admin: httpx.AsyncClient, sender: FakeSender, clock: Clock
) -> None:
    key = await _key_with_secret(admin)
    headers = {**_pair(key), "Idempotency-Key": "after-a-503"}
    sender.up = False
    clock.at = datetime(2026, 12, 1, 12, tzinfo=UTC)
    refused = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=headers)
    assert refused.status_code == 503
    sender.up, clock.at = True, datetime(2026, 12, 2, 12, tzinfo=UTC)
    retry = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=headers)
    assert retry.status_code == 202, retry.text
    [event] = sender.events()
    assert event.finished_at_unix_ms == int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp() * 1000)


async def test_kept_reports_are_deleted_past_their_retention(
    admin: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    key = await _key_with_secret(admin)
    for idem in ("old", "new"):
        headers = {**_pair(key), "Idempotency-Key": idem}
        assert (await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=headers)).status_code == 202
    async with sessions.begin() as session:
        await session.execute(
            text(
                "UPDATE guard_usage_reports SET created_at = now() - interval '41 days' WHERE event_id ="
                " (SELECT min(event_id) FROM guard_usage_reports WHERE key_id = :k)"
            ),
            {"k": key["id"]},
        )
    retention = GuardReportRetention(sessions, CollectorRegistry(), retention_days=40, batch=1)
    assert await retention.run_once() >= 1
    async with sessions() as session:
        left = await session.scalar(
            text("SELECT count(*) FROM guard_usage_reports WHERE key_id = :k"), {"k": key["id"]}
        )
    assert left == 1


@pytest.mark.parametrize(
    "body",
    [
        {**USAGE_BODY, "total_cost": -0.1},
        {**USAGE_BODY, "total_cost": "0.8"},
        {k: v for k, v in USAGE_BODY.items() if k != "total_cost"},
        {**USAGE_BODY, "input_tokens": -1},
        {**USAGE_BODY, "model": ""},
    ],
)
async def test_log_usage_validates(
    admin: httpx.AsyncClient, sender: FakeSender, body: dict[str, Any]
) -> None:
    key = await _key_with_secret(admin)
    resp = await admin.post("/api/guard/log-usage", json=body, headers=_pair(key))
    assert resp.status_code == 400, resp.text
    assert set(resp.json()["error"]) == {"message", "code"}
    assert sender.records == []


async def test_log_usage_503_when_kafka_refuses(admin: httpx.AsyncClient, sender: FakeSender) -> None:
    key = await _key_with_secret(admin)
    sender.up = False
    resp = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=_pair(key))
    assert resp.status_code == 503 and resp.json()["error"]["code"] == "usage_unavailable"
    unauth = await admin.post("/api/guard/log-usage", json=USAGE_BODY, headers=_pair(key, secret="x"))
    assert unauth.status_code == 401
