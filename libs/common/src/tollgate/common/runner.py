"""Runs a service's HTTP app, gRPC server and background tasks in one event loop until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from grpc import aio
from starlette.types import ASGIApp

from tollgate.common.http_protocol import TurnWriteHttpToolsProtocol
from tollgate.common.metrics_endpoint import MetricsEndpoint, metrics_app

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn server that leaves signals to `serve` (which also has to stop gRPC and consumers)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


HTTP_GRACE_S = 20  # seconds; then the shutdown hooks (usage flush, holds back) run within the pod's 30 s
GRPC_GRACE_S = 5.0


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    grpc_server: aio.Server | None = None,
    background: list[Callable[[], Coroutine[Any, Any, None]]] | None = None,
    on_shutdown: list[Callable[[], Awaitable[None]]] | None = None,
    metrics: MetricsEndpoint | None = None,
) -> None:
    """`metrics`: the registry served on its own port (metrics_endpoint.py); up before the HTTP
    app and down after the shutdown hooks, so Prometheus sees the whole drain."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        loop="none",
        # an answer's head and body leave in one send() (http_protocol.py)
        http=TurnWriteHttpToolsProtocol,
        lifespan="off",
        timeout_keep_alive=30,
        # in-flight requests get this long after SIGTERM; Kubernetes SIGKILLs at its grace period (30 s)
        timeout_graceful_shutdown=HTTP_GRACE_S,
        backlog=2048,
        # never rewrite the client address from X-Forwarded-For: the gateway is the edge and sets it
        proxy_headers=False,
    )
    server = _Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    metrics_server = _metrics_server(metrics, host) if metrics is not None else None
    metrics_task = (
        asyncio.create_task(_serve_http(metrics_server, "metrics")) if metrics_server is not None else None
    )
    if grpc_server is not None:
        await grpc_server.start()
    # Start-up objects (modules, settings, pools) live as long as the process: keep them out of
    # every GC pass, and collect young objects less often (fewer pauses on the request path).
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    tasks = [asyncio.create_task(factory()) for factory in background or []]
    http_task = asyncio.create_task(_serve_http(server))
    stop_task = asyncio.create_task(stop.wait())
    watched = [http_task, stop_task, *tasks, *([metrics_task] if metrics_task is not None else [])]
    done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    failed = stop_task not in done  # anything but SIGTERM/SIGINT ending the wait is a failure
    cause: BaseException | None = None
    for finished in done:
        if finished is not stop_task and finished.exception() is not None:
            cause = finished.exception()
            log.error("task failed, shutting down", exc_info=cause)
    # Drain first, with every background task still running: uvicorn stops accepting, closes idle
    # connections and lets requests and streams in flight finish (their hold marks, usage events and
    # rate-limit true-ups need the tasks that send them); the gRPC server does the same meanwhile.
    server.should_exit = True
    grpc_stopped = asyncio.create_task(grpc_server.stop(grace=GRPC_GRACE_S)) if grpc_server else None
    with contextlib.suppress(Exception):
        await http_task
    if grpc_stopped is not None:
        with contextlib.suppress(Exception):
            await grpc_stopped
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    for hook in on_shutdown or []:
        try:
            await hook()
        except Exception:
            log.exception("shutdown hook failed")
    if metrics_server is not None and metrics_task is not None:
        metrics_server.should_exit = True
        with contextlib.suppress(Exception):
            await metrics_task
    stop_task.cancel()
    if failed:
        # exit non-zero so a supervisor (the local stack, Kubernetes) sees the failure
        raise cause or RuntimeError("a component of the service stopped by itself")


def _metrics_server(metrics: MetricsEndpoint, host: str) -> uvicorn.Server:
    config = uvicorn.Config(
        metrics_app(metrics.registry),
        host=host,
        port=metrics.port,
        log_config=None,
        access_log=False,
        loop="none",
        lifespan="off",
        timeout_graceful_shutdown=1,
        proxy_headers=False,
    )
    return _Server(config)


async def _serve_http(server: uvicorn.Server, what: str = "HTTP") -> None:
    """uvicorn exits the process (SystemExit) when it cannot bind; make that an ordinary error so
    the gRPC server and background tasks are stopped too instead of keeping the process alive."""
    try:
        await server.serve()
    except SystemExit as exc:
        raise RuntimeError(f"{what} server failed to start (exit {exc.code})") from None
    if not server.started:
        raise RuntimeError(f"{what} server failed to start")


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is optional; asyncio's loop works, slower
        pass
    asyncio.run(main())
