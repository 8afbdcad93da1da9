"""FastAPI plumbing shared by every service: request ids, spans, metrics, health, error envelope."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollgate.common.errors import InvalidRequest, TollgateError
from tollgate.common.logging import request_id_var

REQUEST_ID_HEADER = "x-request-id"


class ORJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def openai_error_body(
    message: str, error_type: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "code": code, "param": param}}


class HttpMetrics:
    """Per-process HTTP metrics, registered on the registry the service serves on its metrics port."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "http_requests_total", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )


class ObservabilityMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware overhead): request id, server span, metrics."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, tracer_name: str) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = trace.get_tracer(tracer_name)
        # labelled children by (method, route, status): a labels() lookup costs a few µs a request
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = headers.get(REQUEST_ID_HEADER) or f"req_{uuid.uuid4().hex}"
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status_holder = [500]
        rid_bytes = request_id.encode()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid_bytes)]
            await send(message)

        method = scope["method"]
        path = scope["path"]
        started = time.perf_counter()
        ctx = propagate.extract(headers)
        try:
            with self.tracer.start_as_current_span(
                f"{method} {path}",
                context=ctx,
                kind=SpanKind.SERVER,
                attributes={"http.method": method, "http.target": path, "tollgate.request_id": request_id},
            ):
                await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            route_name = getattr(route, "path", None) or "unmatched"
            requests, latency = self._metric_children(method, route_name, status_holder[0])
            requests.inc()
            latency.observe(time.perf_counter() - started)
            request_id_var.reset(token)

    def _metric_children(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        index = (method, route, status)
        children = self._children.get(index)
        if children is None:
            children = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.latency.labels(method, route),
            )
            if len(self._children) < 10_000:  # routes are templates; an odd method is not kept
                self._children[index] = children
        return children


ErrorRenderer = Callable[[Request, TollgateError], dict[str, Any]]


def default_error_renderer(request: Request, exc: TollgateError) -> dict[str, Any]:
    return openai_error_body(exc.message, exc.error_type, exc.code, exc.param)


def create_app(
    service: str,
    registry: CollectorRegistry,
    *,
    error_renderer: ErrorRenderer = default_error_renderer,
    health_check: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """A FastAPI app with /livez, /readyz (and /healthz), request ids, spans, HTTP metrics recorded on
    `registry` (served elsewhere: runner.serve's metrics port) and one error handler per envelope."""
    app = FastAPI(title=f"tollgate-{service}", default_response_class=ORJSONResponse, **fastapi_kwargs)
    metrics = HttpMetrics(registry)
    app.state.http_metrics = metrics  # for hot paths that bypass the router (see the gateway)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, tracer_name=f"tollgate.{service}")

    @app.exception_handler(TollgateError)
    async def _tollgate_error(request: Request, exc: TollgateError) -> Response:
        return ORJSONResponse(error_renderer(request, exc), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        message = (
            f"{param}: {first.get('msg', 'invalid value')}"
            if param
            else str(first.get("msg", "invalid body"))
        )
        return ORJSONResponse(error_renderer(request, InvalidRequest(message, param=param)), status_code=400)

    @app.exception_handler(DataError)
    async def _unstorable_value(request: Request, exc: DataError) -> Response:
        # PostgreSQL refused a value the request carried (a NUL character in text, a number out of
        # range): the client's input, so 400; the transaction was rolled back, nothing is written.
        err = InvalidRequest("A value in the request cannot be stored (for example a NUL character).")
        return ORJSONResponse(error_renderer(request, err), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        err = TollgateError(str(exc.detail))
        err.status_code = exc.status_code
        err.error_type = "invalid_request_error" if exc.status_code < 500 else "api_error"
        err.code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return ORJSONResponse(error_renderer(request, err), status_code=exc.status_code)

    # Kubernetes asks two questions (deploy/k8s): is the process alive (liveness, startup: /livez,
    # no dependency checked, so a database outage never restarts pods into migration crash loops)
    # and may it take traffic (readiness: /readyz, its dependencies answer; 503 in the envelope
    # when one does not). /healthz is readiness too, for the local stack and older probes.
    @app.get("/livez", include_in_schema=False)
    async def _livez() -> dict[str, Any]:
        return {"status": "ok", "service": service}

    async def _ready() -> dict[str, Any]:
        details = await health_check() if health_check else {}
        return {"status": "ok", "service": service, **details}

    app.add_api_route("/readyz", _ready, methods=["GET"], include_in_schema=False)
    app.add_api_route("/healthz", _ready, methods=["GET"], include_in_schema=False)

    # No /metrics here, in any profile: the registry is served on its own port (metrics_endpoint.py)
    # so that nothing routed to the public port (an Ingress, the Service) can read it.
    return app
