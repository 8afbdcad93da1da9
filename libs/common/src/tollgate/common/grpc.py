"""gRPC plumbing: aio server and channels that carry the W3C trace context in metadata, over TLS
(optionally mutual) when the settings ask for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tollgate.common.telemetry import context_from_grpc_metadata, grpc_metadata_from_context
from tollgate.common.tls import TransportConfigError, read_pem, refuse_unused, require_pair
from tollgate.common.transport_settings import TransportSecuritySettings

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.so_reuseport", 0),
]


class _ClientTraceInterceptor(aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds traceparent to outgoing metadata when a span is active."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Awaitable[Any]], client_call_details: Any, request: Any
    ) -> Any:
        if trace.get_current_span().get_span_context().is_valid:
            metadata = list(client_call_details.metadata or [])
            metadata.extend(grpc_metadata_from_context())
            client_call_details = aio.ClientCallDetails(
                client_call_details.method,
                client_call_details.timeout,
                metadata,
                client_call_details.credentials,
                client_call_details.wait_for_ready,
            )
        return await continuation(client_call_details, request)


class _ServerTraceInterceptor(aio.ServerInterceptor):  # type: ignore[misc]
    """Starts a server span per call, parented on the caller's trace context."""

    def __init__(self, service: str) -> None:
        self.tracer = trace.get_tracer(f"tollgate.{service}.grpc")

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = handler_call_details.method
        parent = context_from_grpc_metadata(handler_call_details.invocation_metadata)
        inner = handler.unary_unary
        tracer = self.tracer

        async def traced(request: Any, context: Any) -> Any:
            token = otel_context.attach(parent)
            try:
                with tracer.start_as_current_span(method, kind=SpanKind.SERVER):
                    return await inner(request, context)
            finally:
                otel_context.detach(token)

        return grpc.unary_unary_rpc_method_handler(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


@dataclass(frozen=True)
class ServerTLS:
    """A gRPC server's certificate and key; with `client_ca`, clients must present a certificate
    that CA signed (mTLS)."""

    certificate_chain: bytes
    private_key: bytes = field(repr=False)
    client_ca: bytes | None = None

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )


@dataclass(frozen=True)
class ChannelTLS:
    """How a client checks the server (CA, or the system's roots when None), its own certificate
    for mTLS, and the name expected in the server's certificate when it differs from the target."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)
    server_name: str = ""

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.root_certificates, self.private_key, self.certificate_chain)


def server_tls(settings: TransportSecuritySettings) -> ServerTLS | None:
    """The server side of <P>GRPC_SERVER_TLS_*: None (plaintext) while no certificate is set."""
    require_pair(settings, "grpc_server_tls_cert_file", "grpc_server_tls_key_file")
    cert = read_pem(settings, "grpc_server_tls_cert_file")
    if cert is None:
        refuse_unused(
            settings,
            f"{settings.env_name('grpc_server_tls_cert_file')} is not",
            "grpc_server_tls_client_ca_file",
        )
        return None
    key = read_pem(settings, "grpc_server_tls_key_file")
    assert key is not None  # require_pair: both set
    return ServerTLS(cert, key, read_pem(settings, "grpc_server_tls_client_ca_file"))


def channel_tls(settings: TransportSecuritySettings) -> ChannelTLS | None:
    """The client side of <P>GRPC_TLS*: None (plaintext) unless GRPC_TLS is on."""
    files = ("grpc_tls_ca_file", "grpc_tls_cert_file", "grpc_tls_key_file", "grpc_tls_server_name")
    if not settings.grpc_tls:
        refuse_unused(settings, f"{settings.env_name('grpc_tls')} is off", *files)
        return None
    require_pair(settings, "grpc_tls_cert_file", "grpc_tls_key_file")
    return ChannelTLS(
        root_certificates=read_pem(settings, "grpc_tls_ca_file"),
        certificate_chain=read_pem(settings, "grpc_tls_cert_file"),
        private_key=read_pem(settings, "grpc_tls_key_file"),
        server_name=settings.grpc_tls_server_name,
    )


def make_server(service: str) -> aio.Server:
    return aio.server(interceptors=[_ServerTraceInterceptor(service)], options=_CHANNEL_OPTIONS)


def add_listener(server: aio.Server, address: str, tls: ServerTLS | None) -> int:
    """Listen on `address` (TLS when `tls` is given); returns the bound port."""
    if tls is None:
        return int(server.add_insecure_port(address))
    port = int(server.add_secure_port(address, tls.credentials()))
    if port == 0:
        raise TransportConfigError(
            f"gRPC could not listen with TLS on {address} (certificate or key unusable?)"
        )
    return port


def make_channel(target: str, tls: ChannelTLS | None = None) -> aio.Channel:
    if tls is None:
        return aio.insecure_channel(
            target, options=_CHANNEL_OPTIONS, interceptors=[_ClientTraceInterceptor()]
        )
    options: list[tuple[str, int | str]] = list(_CHANNEL_OPTIONS)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return aio.secure_channel(
        target, tls.credentials(), options=options, interceptors=[_ClientTraceInterceptor()]
    )
