from __future__ import annotations

import httpx
import pytest
from gateway_fakes import failing_client
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tollgate.common.http import create_app
from tollgate.gateway.proxy import routes
from tollgate.gateway.proxy.forwarder import Forwarder, route_for


@pytest.mark.parametrize(
    ("path", "service"),
    [
        ("/admin/api-key/recharge", "billing"),
        ("/admin/api-key/apply", "auth"),
        ("/admin/payment/list", "billing"),
        ("/v1/credits", "billing"),
        ("/cost/stats", "billing"),
        ("/auth/login", "auth"),
        ("/api/guard/auth", "auth"),
        ("/admin/group/list", "auth"),
        ("/admin/audit/list", "auth"),
        ("/analytics/usage", "analytics"),
        ("/admin/session/list", "analytics"),
        ("/user/thread/detail/1", "analytics"),
        ("/training/jobs", "training"),
        ("/fine-tuning/jobs", "training"),
        ("/nowhere", None),
    ],
)
def test_routes_go_to_the_owning_service(path: str, service: str | None) -> None:
    assert route_for(path) == service


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "body": (await request.body()).decode(),
            "request_id": request.headers.get("x-request-id"),
            "auth": request.headers.get("authorization"),
            "forwarded_for": request.headers.getlist("x-forwarded-for"),
        },
        status_code=201,
        headers={"x-owner": "auth"},
    )


def gateway(client: httpx.AsyncClient) -> httpx.AsyncClient:
    app = create_app("gateway", CollectorRegistry())
    app.include_router(routes.build_router(Forwarder({"auth": "http://auth"}, client)))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_forwards_method_path_query_body_status_and_headers() -> None:
    owner = Starlette(routes=[Route("/{p:path}", echo, methods=["GET", "POST", "DELETE"])])
    client = gateway(httpx.AsyncClient(transport=httpx.ASGITransport(app=owner)))
    r = await client.post("/auth/login?x=1&y=2", content=b'{"a":1}', headers={"authorization": "Bearer k"})
    assert r.status_code == 201
    assert r.headers["x-owner"] == "auth"
    data = r.json()
    assert data | {"request_id": None} == {
        "method": "POST",
        "path": "/auth/login",
        "query": "x=1&y=2",
        "body": '{"a":1}',
        "request_id": None,
        "auth": "Bearer k",
        "forwarded_for": ["127.0.0.1"],  # httpx's ASGI transport's client address
    }
    assert data["request_id"] == r.headers["x-request-id"]


async def test_a_caller_cannot_choose_the_address_the_services_see() -> None:
    owner = Starlette(routes=[Route("/{p:path}", echo, methods=["POST"])])
    client = gateway(httpx.AsyncClient(transport=httpx.ASGITransport(app=owner)))
    spoofed = {"x-forwarded-for": "203.0.113.9", "x-real-ip": "203.0.113.9", "forwarded": "for=203.0.113.9"}
    r = await client.post("/auth/login", content=b"{}", headers=spoofed)
    assert r.json()["forwarded_for"] == ["127.0.0.1"]


async def test_owner_down_is_503_in_the_envelope() -> None:
    client = gateway(failing_client(httpx.ConnectError("refused")))
    r = await client.get("/auth/me")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "service_unavailable"
    missing = await client.get("/unknown/thing")
    assert missing.status_code == 404
