"""GET /analytics/usage over HTTP: authentication, org scoping, SloughGPT's shapes and error envelope."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from analytics_testkit import T0, MemoryStore, make_fact
from grpc import aio
from prometheus_client import CollectorRegistry

from tollgate.analytics.app import build_app
from tollgate.analytics.config import AnalyticsSettings
from tollgate.analytics.usage.service import UsageService
from tollgate.common.auth_client import Principal
from tollgate.common.errors import ServiceUnavailable, Unauthenticated

KEY_A = "tg_key_of_org_a"


def _principal(org_id: str) -> Principal:
    return Principal(
        key_id=1,
        org_id=org_id,
        user_id="u1",
        role="user",
        group_id=0,
        permissions=("read",),
        key_prefix="tg_key",
        expires_at_unix=0,
        month_quota_micros=0,
    )


class FakeAuth:
    def __init__(self, keys: dict[str, Principal], *, down: bool = False) -> None:
        self.keys = keys
        self.down = down
        self.seen: list[str] = []

    async def authenticate(self, api_key: str) -> Principal:
        self.seen.append(api_key)
        if self.down:
            raise aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, aio.Metadata(), aio.Metadata(), "down")
        if api_key not in self.keys:
            raise Unauthenticated("Incorrect API key provided.")
        return self.keys[api_key]


class FakeSession:
    def __init__(self) -> None:
        self.committed = False

    async def commit(self) -> None:
        self.committed = True

    async def rollback(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> FakeSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def _seeded_store() -> MemoryStore:
    store = MemoryStore()
    await UsageService(store).record(
        None,  # type: ignore[arg-type]
        [
            make_fact("a1", latency_ms=80, cost_micros=500_000),
            make_fact("a2", model="gpt-y", created_at=T0 + dt.timedelta(days=1)),
            make_fact("b1", org_id="org_b", tokens_in=999),
        ],
    )
    return store


def _client(store: MemoryStore, auth: FakeAuth, health: Any = None) -> httpx.AsyncClient:
    app = build_app(
        settings=AnalyticsSettings(),
        registry=CollectorRegistry(),
        sessions=FakeSession,  # type: ignore[arg-type]
        auth_client=auth,
        usage_service=UsageService(store),
        health_check=health,
        clock=lambda: dt.datetime(2024, 1, 20, 23, 59, tzinfo=dt.UTC),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://analytics")


@pytest.fixture
async def store() -> MemoryStore:
    return await _seeded_store()


@pytest.fixture
async def client(store: MemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(store, FakeAuth({KEY_A: _principal("org_a")})) as c:
        yield c


async def test_usage_by_model_in_sloughgpts_shape_for_the_callers_org(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/analytics/usage",
        params={"start_date": "2024-01-01", "end_date": "2024-01-31", "group_by": "model"},
        headers={"Authorization": f"Bearer {KEY_A}"},
    )

    assert resp.status_code == 200
    none = {"cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0}
    assert resp.json() == {
        "total_requests": 2,
        "total_tokens": 60,
        "total_cached_tokens": 0,
        "total_cache_write_tokens": 0,
        "total_reasoning_tokens": 0,
        "average_response_time_ms": 90.0,
        "success_rate": 1.0,
        "breakdown": [
            {
                "model_id": "gpt-x",
                "requests": 1,
                "tokens": 30,
                **none,
                "avg_response_time": 80.0,
                "cost": 0.5,
            },
            {
                "model_id": "gpt-y",
                "requests": 1,
                "tokens": 30,
                **none,
                "avg_response_time": 100.0,
                "cost": 0.0015,
            },
        ],
    }


async def test_usage_by_day_with_x_api_key_and_default_window(
    client: httpx.AsyncClient, store: MemoryStore
) -> None:
    resp = await client.get("/analytics/usage", params={"group_by": "day"}, headers={"X-API-Key": KEY_A})

    assert resp.status_code == 200
    assert [(b["date"], b["requests"]) for b in resp.json()["breakdown"]] == [
        ("2024-01-15", 1),
        ("2024-01-16", 1),
    ]
    assert store.queries == [("day", "org_a", dt.date(2023, 12, 22), dt.date(2024, 1, 20))]


async def test_bad_date_is_400_invalid_parameter_in_sloughgpts_envelope(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/analytics/usage",
        params={"start_date": "2024-01-32"},
        headers={"Authorization": f"Bearer {KEY_A}", "X-Request-Id": "req_test_1"},
    )

    assert resp.status_code == 400
    assert resp.json() == {
        "error": {
            "code": "INVALID_PARAMETER",
            "message": "'start_date' must be a date formatted YYYY-MM-DD",
            "details": {
                "reason": "INVALID_PARAMETER",
                "parameter": "start_date",
                "value": "2024-01-32",
                "format": "YYYY-MM-DD",
            },
            "request_id": "req_test_1",
        }
    }


async def test_bad_group_by_is_400(client: httpx.AsyncClient) -> None:
    resp = await client.get(
        "/analytics/usage", params={"group_by": "user"}, headers={"Authorization": f"Bearer {KEY_A}"}
    )

    assert resp.status_code == 400
    body = resp.json()["error"]
    assert (body["code"], body["details"]["parameter"]) == ("INVALID_PARAMETER", "group_by")
    assert body["request_id"] == resp.headers["x-request-id"]


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/analytics/usage", {"key_id": "abc"}, "key_id"),
        ("/analytics/usage", {"operation": "Chat; drop"}, "operation"),
        ("/analytics/usage", {"model": "m" * 513}, "model"),
        ("/analytics/latency", {"key_id": "-1"}, "key_id"),
        ("/analytics/latency", {"group_by": "user"}, "group_by"),
        ("/analytics/latency", {"start_date": "2024-02-01", "end_date": "2024-01-01"}, "start_date"),
        ("/analytics/errors", {"limit": "1000"}, "limit"),
        ("/analytics/errors", {"before": "last tuesday"}, "before"),
    ],
)
async def test_bad_filters_of_the_insight_routes_are_400_invalid_parameter(
    client: httpx.AsyncClient, path: str, params: dict[str, str], parameter: str
) -> None:
    resp = await client.get(path, params=params, headers={"Authorization": f"Bearer {KEY_A}"})

    assert resp.status_code == 400, resp.text
    body = resp.json()["error"]
    assert (body["code"], body["details"]["parameter"]) == ("INVALID_PARAMETER", parameter)


@pytest.mark.parametrize("path", ["/analytics/latency", "/analytics/errors"])
async def test_insight_routes_need_a_key(client: httpx.AsyncClient, path: str) -> None:
    resp = await client.get(path)

    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer tg_wrong"}, {"Authorization": "Basic x"}])
async def test_missing_or_unknown_key_is_401_unauthorized(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    resp = await client.get("/analytics/usage", headers=headers)

    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "UNAUTHORIZED"


async def test_auth_outage_is_503_not_401(store: MemoryStore) -> None:
    async with _client(store, FakeAuth({}, down=True)) as c:
        resp = await c.get("/analytics/usage", headers={"Authorization": f"Bearer {KEY_A}"})

    assert resp.status_code == 503
    assert resp.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


async def test_healthz_reports_the_database_check_and_fails_when_it_fails(store: MemoryStore) -> None:
    async def healthy() -> dict[str, Any]:
        return {"database": "ok"}

    async def broken() -> dict[str, Any]:
        raise ServiceUnavailable("Database unavailable.")

    async with _client(store, FakeAuth({}), healthy) as ok, _client(store, FakeAuth({}), broken) as bad:
        good_resp = await ok.get("/healthz")
        bad_resp = await bad.get("/healthz")

    assert good_resp.status_code == 200
    assert good_resp.json() == {"status": "ok", "service": "analytics", "database": "ok"}
    assert bad_resp.status_code == 503
