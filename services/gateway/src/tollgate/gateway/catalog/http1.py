"""A lean keep-alive HTTP/1.1 client for plain-http upstreams' non-streaming calls.

Why not httpx here: profiles of the gateway at concurrency 1 put httpx's request/response model,
auth/redirect layers and anyio stream wrappers at about a third of the gateway's CPU per request.
Self-hosted upstreams (llama.cpp, vLLM, TGI, the simulator) usually sit on plain HTTP next to the
gateway, so for them this client writes the request bytes itself and parses the answer with
httptools (the parser uvicorn uses). HTTPS upstreams and every streamed call keep using httpx.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from tollgate.common.waits import timed


class UpstreamConnectionError(ConnectionError):
    """The upstream could not be reached, closed the connection, or sent a malformed answer."""


@dataclass(frozen=True, slots=True)
class Http1Response:
    status_code: int
    content: bytes


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.keep_alive = True
        self._waiter: asyncio.Future[Http1Response] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._body: list[bytes] = []
        self._received = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._received = True
        if self._parser is None:  # bytes nobody asked for: the connection is not reusable
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamConnectionError(f"malformed upstream response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(UpstreamConnectionError("upstream closed the connection"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser, waiter = self._parser, self._waiter
        self._parser = self._waiter = None
        if parser is None or waiter is None or waiter.done():
            return
        self.keep_alive = parser.should_keep_alive()
        waiter.set_result(Http1Response(parser.get_status_code(), b"".join(self._body)))

    # used by the pool
    def send(self, request: bytes) -> asyncio.Future[Http1Response]:
        assert self.transport is not None
        self._body = []
        self._received = False
        self._parser = httptools.HttpResponseParser(self)
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    @property
    def received_anything(self) -> bool:
        return self._received

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter, self._parser = self._waiter, None, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Http1Pool:
    """Keep-alive connections to one host:port; `post` is safe to call concurrently."""

    def __init__(self, base_url: str, *, max_idle: int = 256, connect_timeout_s: float = 5.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"Http1Pool serves plain http URLs only, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self._host_header = f"{self.host}:{self.port}".encode()
        self._idle: deque[_Connection] = deque()
        self._max_idle = max_idle
        self._connect_timeout = connect_timeout_s

    async def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> Http1Response:
        """POSTs and reads the whole answer. Raises TimeoutError or UpstreamConnectionError."""
        path = urlsplit(url).path or "/"
        head = [f"POST {path} HTTP/1.1".encode(), b"Host: " + self._host_header]
        head += [f"{name}: {value}".encode("latin-1") for name, value in headers.items()]
        head.append(b"Content-Length: " + str(len(body)).encode())
        request = b"\r\n".join(head) + b"\r\n\r\n" + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        reused = True
        while True:
            conn = self._take_idle()
            if conn is None:
                reused = False
                conn = await self._connect(deadline)
            waiter = conn.send(request)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                response = await waiter
            except UpstreamConnectionError:
                conn.close()
                # A kept-alive connection the upstream had already closed: retry once on a fresh
                # one, but only if it never answered a byte (so the upstream never saw the call).
                if reused and not conn.received_anything:
                    continue
                raise
            except BaseException:  # timeout or cancellation: the connection state is unknown
                conn.close()
                raise
            finally:
                timer.cancel()
            if conn.keep_alive and not conn.closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
            else:
                conn.close()
            return response

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            conn = self._idle.pop()  # most recently used first: least likely to have timed out
            if not conn.closed:
                return conn
        return None

    async def _connect(self, deadline: float) -> _Connection:
        loop = asyncio.get_running_loop()
        timeout = max(0.0, min(self._connect_timeout, deadline - loop.time()))
        try:
            _, protocol = await timed(loop.create_connection(_Connection, self.host, self.port), timeout)
        except OSError as exc:
            raise UpstreamConnectionError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return protocol

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _expire(waiter: asyncio.Future[Http1Response]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("upstream did not answer in time"))
