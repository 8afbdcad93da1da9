"""Length-prefixed frames over a plain asyncio stream, secured like the services' gRPC ports.

Why not gRPC for these (docs/billing.md, "Why the marks have a socket of their own"): a message
that must be out of the process before an answer leaves costs a gRPC aio stream write, its
completion callback from grpc's poller thread and a loop wake-up; `transport.write` hands the bytes
to the kernel in the same call. A frame is a 4-byte big-endian length, then that many bytes.
"""

from __future__ import annotations

import ssl
import struct
from collections.abc import Iterator

from tollgate.common.tls import TransportConfigError, client_ssl_context, require_pair
from tollgate.common.transport_settings import TransportSecuritySettings

_LENGTH = struct.Struct(">I")
MAX_FRAME_BYTES = 16 * 1024 * 1024


class FrameError(ValueError):
    """A peer announced a frame over the limit: the stream cannot be trusted any further."""


def encode_frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(payload)} bytes over the {MAX_FRAME_BYTES}-byte limit")
    return _LENGTH.pack(len(payload)) + payload


class FrameDecoder:
    """Bytes in as they arrive (any split), whole frames out."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._buffer += data
        start = 0
        while len(self._buffer) - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer, start)
            if length > self._max:
                raise FrameError(f"frame of {length} bytes announced, over the {self._max}-byte limit")
            end = start + _LENGTH.size + length
            if len(self._buffer) < end:
                break
            yield bytes(self._buffer[start + _LENGTH.size : end])
            start = end
        if start:
            del self._buffer[:start]


def stream_server_ssl(settings: TransportSecuritySettings) -> ssl.SSLContext | None:
    """A frame server's TLS from <P>GRPC_SERVER_TLS_* (the same certificate, the same client CA for
    mTLS as the service's gRPC port); None while no certificate is set."""
    require_pair(settings, "grpc_server_tls_cert_file", "grpc_server_tls_key_file")
    if not settings.grpc_server_tls_cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.grpc_server_tls_cert_file, settings.grpc_server_tls_key_file)
        if settings.grpc_server_tls_client_ca_file:
            context.load_verify_locations(cafile=settings.grpc_server_tls_client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TransportConfigError(
            f"{settings.env_name('grpc_server_tls_cert_file')}: cannot serve frames with TLS ({exc})"
        ) from None
    return context


def stream_client_ssl(settings: TransportSecuritySettings) -> ssl.SSLContext | None:
    """A frame client's TLS from <P>GRPC_TLS* (CA, client certificate); None while GRPC_TLS is off."""
    if not settings.grpc_tls:
        return None
    return client_ssl_context(
        settings,
        ca="grpc_tls_ca_file",
        cert="grpc_tls_cert_file",
        key="grpc_tls_key_file",
        check_hostname=True,
    )
