"""The credit chat API's /api/keys belongs to auth: the route table sends it there, and nothing that merely
shares its first letters."""

from __future__ import annotations

import httpx
import pytest
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
        ("/api/keys", "auth"),
        ("/api/keys/", "auth"),
        ("/api/keys/42", "auth"),
        ("/api/keysmith", None),
        ("/api/key", None),
    ],
)
def test_api_keys_route_to_auth(path: str, service: str | None) -> None:
    assert route_for(path) == service


async def test_api_keys_requests_reach_auth_with_cookie_and_body() -> None:
    async def owner(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "path": request.url.path,
                "method": request.method,
                "cookie": request.cookies.get("session"),
                "body": (await request.body()).decode(),
            }
        )

    upstream = Starlette(routes=[Route("/{p:path}", owner, methods=["GET", "POST", "DELETE"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream)) as to_auth:
        app = create_app("gateway", CollectorRegistry())
        app.include_router(routes.build_router(Forwarder({"auth": "http://auth"}, to_auth)))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as gw:
            created = await gw.post(
                "/api/keys", content=b'{"name": "k"}', headers={"cookie": "session=a.b.c"}
            )
            deleted = await gw.delete("/api/keys/7")
    assert created.status_code == 200, created.text
    assert created.json() == {
        "path": "/api/keys",
        "method": "POST",
        "cookie": "a.b.c",
        "body": '{"name": "k"}',
    }
    assert deleted.json()["path"] == "/api/keys/7" and deleted.json()["method"] == "DELETE"
