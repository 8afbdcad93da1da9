import asyncio
import os
import signal
import socket

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter

from tollgate.common.grpc import make_server
from tollgate.common.http import create_app
from tollgate.common.metrics_endpoint import MetricsEndpoint
from tollgate.common.runner import serve


async def test_a_taken_http_port_stops_the_whole_service_with_an_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    grpc_server = make_server("test")
    grpc_server.add_insecure_port("127.0.0.1:0")
    background_stopped = asyncio.Event()

    async def background() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            background_stopped.set()

    try:
        with pytest.raises(RuntimeError, match="HTTP server failed to start"):
            await asyncio.wait_for(
                serve(FastAPI(), "127.0.0.1", port, grpc_server=grpc_server, background=[background]), 20
            )
    finally:
        taken.close()
    assert background_stopped.is_set()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_metrics_are_served_on_their_own_port_and_not_on_the_public_one() -> None:
    registry = CollectorRegistry()
    Counter("things_done_total", "things", registry=registry).inc(3)
    http_port, metrics_port = _free_port(), _free_port()
    app = create_app("svc", registry)
    service = asyncio.create_task(
        serve(app, "127.0.0.1", http_port, metrics=MetricsEndpoint(registry, metrics_port))
    )
    try:
        async with httpx.AsyncClient(timeout=5, trust_env=False) as client:
            for _ in range(100):  # until both listeners are up
                try:
                    await client.get(f"http://127.0.0.1:{http_port}/livez")
                    await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            scraped = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            public = await client.get(f"http://127.0.0.1:{http_port}/metrics")
            other = await client.get(f"http://127.0.0.1:{metrics_port}/livez")
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # serve's own stop path (its signal handler)
        await asyncio.wait_for(service, 30)
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    assert "things_done_total 3.0" in scraped.text
    assert 'http_requests_total{method="GET",route="/livez",status="200"}' in scraped.text
    assert public.status_code == 404 and other.status_code == 404


async def test_a_taken_metrics_port_stops_the_service_with_an_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    registry = CollectorRegistry()
    try:
        with pytest.raises(RuntimeError, match="metrics server failed to start"):
            await asyncio.wait_for(
                serve(
                    FastAPI(),
                    "127.0.0.1",
                    _free_port(),
                    metrics=MetricsEndpoint(registry, taken.getsockname()[1]),
                ),
                20,
            )
    finally:
        taken.close()
