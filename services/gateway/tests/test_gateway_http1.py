"""The lean HTTP/1.1 upstream client against a real TCP server written here, byte by byte."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tollgate.gateway.catalog.http1 import Http1Pool, UpstreamConnectionError

Handler = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


class Server:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                await self.handler(body, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat/completions"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Server]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> Server:
        server = Server(handler)
        server.server = await asyncio.start_server(server._serve, "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for s in servers:
        assert s.server is not None
        s.server.close()


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + extra
        + (b"Content-Length: %d\r\n\r\n" % len(body))
        + body
    )


async def _echo(body: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(_ok(body))
    await writer.drain()


async def test_posts_and_reuses_one_connection(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    server = await serve(_echo)
    pool = Http1Pool(server.url.rsplit("/v1", 1)[0])
    for i in range(5):
        response = await pool.post(server.url, b'{"n": %d}' % i, {"content-type": "application/json"}, 5)
        assert (response.status_code, response.content) == (200, b'{"n": %d}' % i)
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"content-type: application/json\r\n" in first and b"Content-Length: 8\r\n" in first
    pool.close()


async def test_concurrent_calls_open_parallel_connections(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    async def slow(body: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.05)
        await _echo(body, writer)

    server = await serve(slow)
    pool = Http1Pool(server.url.rsplit("/v1", 1)[0])
    answers = await asyncio.gather(*(pool.post(server.url, b"%d" % i, {}, 5) for i in range(8)))
    assert sorted(a.content for a in answers) == sorted(b"%d" % i for i in range(8))
    assert server.connections == 8
    pool.close()


async def test_chunked_answer_and_error_status(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def chunked(body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
        await writer.drain()

    server = await serve(chunked)
    pool = Http1Pool(server.url.rsplit("/v1", 1)[0])
    response = await pool.post(server.url, b"{}", {}, 5)
    assert (response.status_code, response.content) == (503, b"hello world")
    pool.close()


async def test_connection_close_is_honoured(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def closing(body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(_ok(b"{}", b"Connection: close\r\n"))
        await writer.drain()
        writer.close()

    server = await serve(closing)
    pool = Http1Pool(server.url.rsplit("/v1", 1)[0])
    for _ in range(3):
        assert (await pool.post(server.url, b"{}", {}, 5)).status_code == 200
    assert server.connections == 3
    pool.close()


async def test_idle_connection_closed_by_the_server_is_retried_on_a_fresh_one(
    serve: Callable[[Handler], Awaitable[Server]],
) -> None:
    writers: list[asyncio.StreamWriter] = []

    async def remember(body: bytes, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await _echo(body, writer)

    server = await serve(remember)
    pool = Http1Pool(server.url.rsplit("/v1", 1)[0])
    assert (await pool.post(server.url, b"1", {}, 5)).content == b"1"
    writers[0].transport.abort()  # the server drops the kept-alive connection
    await asyncio.sleep(0.05)
    assert (await pool.post(server.url, b"2", {}, 5)).content == b"2"
    assert server.connections == 2
    pool.close()


async def test_timeout_and_refused_connection(serve: Callable[[Handler], Awaitable[Server]]) -> None:
    async def never(body: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    server = await serve(never)
    pool = Http1Pool(server.url.rsplit("/v1", 1)[0])
    with pytest.raises(TimeoutError):
        await pool.post(server.url, b"{}", {}, 0.2)
    pool.close()

    closed = Http1Pool("http://127.0.0.1:1")
    with pytest.raises(UpstreamConnectionError):
        await closed.post("http://127.0.0.1:1/v1/chat/completions", b"{}", {}, 2)


def test_only_plain_http_is_served() -> None:
    with pytest.raises(ValueError):
        Http1Pool("https://api.openai.com/v1")
