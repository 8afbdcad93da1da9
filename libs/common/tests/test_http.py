import httpx
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel

from tollgate.common.auth_client import api_key_from_headers
from tollgate.common.errors import InsufficientCredits
from tollgate.common.http import create_app


class Body(BaseModel):
    name: str


def _app(registry: CollectorRegistry | None = None):  # type: ignore[no-untyped-def]
    app = create_app("test", registry or CollectorRegistry())

    @app.post("/things")
    async def make(body: Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/broke")
    async def broke() -> None:
        raise InsufficientCredits("You have no credits left.")

    return app


async def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t")


async def test_validation_errors_are_400_in_openai_envelope() -> None:
    async with await _client() as client:
        resp = await client.post("/things", json={"name": 5})
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == "name"
    assert resp.headers["x-request-id"].startswith("req_")


async def test_domain_errors_carry_status_and_code() -> None:
    async with await _client() as client:
        resp = await client.get("/broke", headers={"x-request-id": "req_given"})
    assert resp.status_code == 402
    assert resp.json()["error"]["code"] == "insufficient_credits"
    assert resp.headers["x-request-id"] == "req_given"


async def test_unknown_route_is_404_in_envelope_and_metrics_count_it() -> None:
    registry = CollectorRegistry()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(registry)), base_url="http://t") as c:
        resp = await c.get("/nope")
        public_metrics = await c.get("/metrics")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    # metrics are served on their own port (metrics_endpoint.py), never by the public app
    assert public_metrics.status_code == 404
    text = generate_latest(registry).decode()
    assert 'http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert 'route="/metrics"' not in text and 'route="unmatched",status="404"} 2.0' in text


def test_api_key_header_forms() -> None:
    assert api_key_from_headers("Bearer tg_abc", None) == "tg_abc"
    assert api_key_from_headers(None, "tg_xyz") == "tg_xyz"
    assert api_key_from_headers("Basic foo", None) is None
    assert api_key_from_headers("Bearer   ", "") is None


async def test_a_value_the_database_refuses_is_a_400() -> None:
    from sqlalchemy.exc import DataError

    app = _app()

    @app.post("/store")
    async def store() -> None:
        raise DataError(
            "INSERT ...", {}, ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        )

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        resp = await client.post("/store")
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"


async def test_liveness_asks_nothing_of_dependencies_and_readiness_does() -> None:
    """A database outage makes pods unready (503), never restarts them: /livez checks no dependency."""
    from tollgate.common.errors import ServiceUnavailable

    state = {"database": "ok"}

    async def check() -> dict[str, str]:
        if state["database"] != "ok":
            raise ServiceUnavailable("Database unavailable: OperationalError.")
        return dict(state)

    app = create_app("svc", CollectorRegistry(), health_check=check)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for path in ("/livez", "/readyz", "/healthz"):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/readyz")).json() == {"status": "ok", "service": "svc", "database": "ok"}
        state["database"] = "down"
        assert (await client.get("/livez")).json() == {"status": "ok", "service": "svc"}
        for path in ("/readyz", "/healthz"):
            unready = await client.get(path)
            assert unready.status_code == 503 and "Database unavailable" in unready.text, path
