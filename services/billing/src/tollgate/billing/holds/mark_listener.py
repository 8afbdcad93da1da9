"""Billing's marks port: the gateways' hold marks, length-prefixed `HoldMarks` frames over TCP (TLS,
mutual when a client CA is set, as on the gRPC port). Why not gRPC: gateway/usage/marks.py.

Each frame's marks are applied in order as they arrive; a malformed mark is skipped (its usage
event still settles the request); a frame that does not parse, or is announced over the size
limit, ends that connection (the gateway reconnects), never the others. Nothing is ever written
back: a gateway that dies with unread input on its socket would reset it and lose what it sent.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from collections.abc import Callable, Sequence

from google.protobuf.message import DecodeError

from tollgate.billing.holds.store import MarkRecord, valid_id
from tollgate.billing.metrics import BillingMetrics
from tollgate.common.frames import FrameDecoder, FrameError
from tollgate.contracts.v1 import billing_pb2

log = logging.getLogger(__name__)


def mark_record(mark: billing_pb2.HoldMark) -> MarkRecord | None:
    if not (valid_id(mark.org_id) and valid_id(mark.hold_id)) or mark.cost_micros < 0 or not mark.usage_event:
        return None
    # kept whole (base64 in Redis): the sweeper publishes the event and its headers from it
    payload = base64.b64encode(mark.SerializeToString()).decode()
    return MarkRecord(mark.org_id, mark.hold_id, mark.cost_micros, payload)


class _MarkConnection(asyncio.Protocol):
    def __init__(
        self,
        apply: Callable[[bytes], None],
        open_connections: set[asyncio.BaseTransport],
        metrics: BillingMetrics,
    ) -> None:
        self._apply = apply
        self._open = open_connections
        self._metrics = metrics
        self._decoder = FrameDecoder()
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._open.add(transport)
        self._metrics.mark_connections.set(len(self._open))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._open.discard(self._transport)
            self._metrics.mark_connections.set(len(self._open))

    def data_received(self, data: bytes) -> None:
        try:
            for frame in self._decoder.feed(data):
                self._apply(frame)
        except (FrameError, DecodeError) as exc:
            log.warning("hold mark connection dropped: %s", exc, extra={"peer": self._peer()})
            self._metrics.mark_connections_refused.inc()
            if self._transport is not None:
                self._transport.abort()

    def _peer(self) -> str:
        peer = self._transport.get_extra_info("peername") if self._transport is not None else None
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"


class MarkListener:
    """Serves the marks port; `mark` takes each frame's well-formed marks (HoldService.mark)."""

    def __init__(
        self,
        mark: Callable[[Sequence[MarkRecord]], None],
        metrics: BillingMetrics,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
    ) -> None:
        self._mark = mark
        self._metrics = metrics
        self._accepted = metrics.marks_received.labels("accepted")
        self._malformed = metrics.marks_received.labels("malformed")
        self._host = host
        self._port = port
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.BaseTransport] = set()

    def _apply(self, frame: bytes) -> None:
        batch = billing_pb2.HoldMarks.FromString(frame)
        records = [record for mark in batch.marks if (record := mark_record(mark)) is not None]
        if len(records) < len(batch.marks):
            log.warning("malformed hold marks skipped", extra={"count": len(batch.marks) - len(records)})
            self._malformed.inc(len(batch.marks) - len(records))
        self._accepted.inc(len(records))
        if records:
            self._mark(records)

    async def start(self) -> int:
        """Listens; returns the bound port (useful when asked for port 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _MarkConnection(self._apply, self._connections, self._metrics),
            self._host,
            self._port,
            ssl=self._tls,
            reuse_address=True,
        )
        return int(self._server.sockets[0].getsockname()[1])

    async def run(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        log.info("hold marks listening", extra={"port": self._server.sockets[0].getsockname()[1]})
        await self._server.serve_forever()

    async def close(self) -> None:
        """Stops accepting and ends the gateways' connections (they reconnect, to another replica):
        a mark arriving after the final flush of pending marks would be lost with this process."""
        if self._server is not None:
            self._server.close()
        for transport in list(self._connections):
            transport.close()
