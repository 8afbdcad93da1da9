import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tollgate.common.http_protocol import TurnWriteHttpToolsProtocol, TurnWriteTransport


class _CountingTransport:
    """The socket's transport as the protocol's wrapper sees it: counts the `write` calls that
    reach it (each one a send() on a real socket)."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _protocol_counting_into(writes: list[bytes]) -> type[TurnWriteHttpToolsProtocol]:
    class Counting(TurnWriteHttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(_CountingTransport(transport, writes))  # type: ignore[arg-type]

    return Counting


Served = tuple[uvicorn.Server, asyncio.Task[None], int]


async def _serve(app: Starlette, protocol: type[asyncio.Protocol]) -> Served:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=protocol, lifespan="off", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):  # until it listens
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, port


async def test_an_answer_leaves_in_one_write_and_keep_alive_still_works() -> None:
    writes: list[bytes] = []

    async def answer(request: Request) -> JSONResponse:
        return JSONResponse({"n": request.query_params["n"]})

    server, task, port = await _serve(Starlette(routes=[Route("/", answer)]), _protocol_counting_into(writes))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:
            first = await client.get("/", params={"n": "1"})
            second = await client.get("/", params={"n": "2"})  # the same kept-alive connection
    finally:
        server.should_exit = True
        await task
    assert (first.json(), second.json()) == ({"n": "1"}, {"n": "2"})
    assert len(writes) == 2, writes  # one per answer: head and body together
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(b'{"n":"1"}')


async def test_a_stream_chunk_leaves_with_the_turn_that_wrote_it() -> None:
    """The app writes its second chunk only once the client has read the first: a chunk held back
    past its turn would stall the stream (and the test, by its timeout)."""
    first_read = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one\n"
        await first_read.wait()
        yield b"two\n"

    async def stream(_: Request) -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    server, task, port = await _serve(Starlette(routes=[Route("/", stream)]), TurnWriteHttpToolsProtocol)
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client,
            client.stream("GET", "/") as response,
        ):
            lines = response.aiter_lines()
            first = await asyncio.wait_for(anext(lines), 5)
            first_read.set()
            second = await asyncio.wait_for(anext(lines), 5)
    finally:
        server.should_exit = True
        await task
    assert (first, second) == ("one", "two")


async def test_a_connection_close_answer_is_sent_whole_before_the_close() -> None:
    async def closing(_: Request) -> Response:
        return Response(b"x" * 10_000, headers={"connection": "close"})

    server, task, port = await _serve(Starlette(routes=[Route("/", closing)]), TurnWriteHttpToolsProtocol)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 5)  # to EOF: the server closed
        writer.close()
    finally:
        server.should_exit = True
        await task
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in head.lower()
    assert body == b"x" * 10_000


class _RecordingTransport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0


async def test_writes_of_one_turn_are_joined_and_a_close_sends_them_first() -> None:
    loop = asyncio.get_running_loop()
    inner = _RecordingTransport()
    wrapped = TurnWriteTransport(inner, loop)  # type: ignore[arg-type]
    wrapped.write(b"head,")
    wrapped.write(b"")
    wrapped.write(memoryview(b"body"))
    assert inner.calls == [] and wrapped.get_write_buffer_size() == 9
    await asyncio.sleep(0)  # the turn ends
    assert inner.calls == [("write", b"head,body")]
    wrapped.write(b"last")
    wrapped.close()
    assert inner.calls[1:] == [("write", b"last"), ("close", b"")]
    await asyncio.sleep(0)
    assert len(inner.calls) == 3  # the turn's end finds nothing left to send
