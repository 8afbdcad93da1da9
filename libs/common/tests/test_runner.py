import asyncio
import socket

import pytest
from fastapi import FastAPI

from tollgate.common.grpc import make_server
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
