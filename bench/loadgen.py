"""An open-loop HTTP/1.1 load generator for POSTs at a fixed rate (wrk2 is not available here).

Request i is due at t0 + i / rate whatever the answers do; a due request waits for a free
keep-alive connection if all are busy, and that wait counts in its latency (no coordinated
omission). Answers are parsed with httptools (uvicorn's parser) in the protocol callbacks, so the
answer time is stamped when the last byte arrives, not when a busy event loop gets round to it;
httpx spent more CPU per request than the gateway itself and skewed both rate and timestamps.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


@dataclass(slots=True)
class Sample:
    due: float  # wall clock: when it should have been sent
    answered: float = 0.0  # wall clock: last byte of the answer (0: none)
    status: int = 0
    request_id: str = ""


class _Conn(asyncio.Protocol):
    def __init__(self, gen: LoadGen) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sample: Sample | None = None
        self.request_id = ""
        self._header = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.gen.idle.append(self)
        self.gen.pump()

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.sample is not None:
            self.sample.status = -1
            self.gen.finish(self.sample)
            self.sample = None
        if self in self.gen.idle:
            self.gen.idle.remove(self)
        self.gen.lost += 1

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-request-id":
            self.request_id = value.decode()

    def on_message_complete(self) -> None:
        sample, self.sample = self.sample, None
        if sample is None:
            return
        sample.answered = time.time()
        sample.status = self.parser.get_status_code()
        sample.request_id, self.request_id = self.request_id, ""
        self.gen.finish(sample)
        self.gen.idle.append(self)
        self.gen.pump()


class LoadGen:
    def __init__(self, url: str, body: bytes, keys: list[str], connections: int = 64) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.requests = [
            (
                f"POST {parts.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
            for key in keys
        ]
        self.connections = connections
        self.idle: deque[_Conn] = deque()
        self.queue: deque[tuple[Sample, bytes]] = deque()
        self.pending = 0
        self.lost = 0
        self.done: asyncio.Event | None = None

    def pump(self) -> None:
        while self.idle and self.queue:
            conn = self.idle.popleft()
            conn.sample, request = self.queue.popleft()
            assert conn.transport is not None
            conn.transport.write(request)

    def finish(self, _sample: Sample) -> None:
        self.pending -= 1
        if self.pending == 0 and self.done is not None:
            self.done.set()

    async def run(self, rate: float, seconds: float) -> list[Sample]:
        loop = asyncio.get_running_loop()
        for _ in range(self.connections):
            await loop.create_connection(lambda: _Conn(self), self.host, self.port)
        total = int(rate * seconds)
        samples = []
        start_mono, start_wall = loop.time(), time.time()
        for i in range(total):
            delay = start_mono + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sample = Sample(due=start_wall + i / rate)
            samples.append(sample)
            self.pending += 1
            self.queue.append((sample, self.requests[i % len(self.requests)]))
            self.pump()
        self.done = asyncio.Event()
        if self.pending:
            async with asyncio.timeout(120):
                await self.done.wait()
        for conn in list(self.idle):
            if conn.transport is not None:
                conn.transport.close()
        return samples
