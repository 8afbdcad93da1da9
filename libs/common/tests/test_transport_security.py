"""TLS between services (gRPC, with and without client certificates), the Kafka client options and
the settings that would silently fall back to plaintext, which must stop a start instead."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from pydantic import SecretStr

from tollgate.common.db import make_engine
from tollgate.common.grpc import add_listener, channel_tls, make_channel, make_server, server_tls
from tollgate.common.kafka import KafkaConnection, kafka_connection
from tollgate.common.redis import make_redis
from tollgate.common.settings import ServiceSettings
from tollgate.common.tls import TransportConfigError
from tollgate.devstack.certificates import CertificateFiles, ensure_certificates

ECHO = "/tollgate.test.Echo/Echo"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return ensure_certificates(tmp_path_factory.mktemp("tls"))


def settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(**values)


async def _echo(request: bytes, context: aio.ServicerContext) -> bytes:
    return request


@contextlib.asynccontextmanager
async def echo_server(certs: CertificateFiles, *, mtls: bool) -> AsyncIterator[int]:
    """An echo server on the server TLS settings (requiring client certificates when `mtls`)."""
    tls = server_tls(
        settings(
            grpc_server_tls_cert_file=str(certs.server_cert),
            grpc_server_tls_key_file=str(certs.server_key),
            grpc_server_tls_client_ca_file=str(certs.ca) if mtls else "",
        )
    )
    assert tls is not None
    server = make_server("tls-test")
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("tollgate.test.Echo", {"Echo": handler})]
    )
    port = add_listener(server, "127.0.0.1:0", tls)
    await server.start()
    yield port
    await server.stop(None)


@pytest.fixture
async def tls_server(certs: CertificateFiles) -> AsyncIterator[int]:
    async with echo_server(certs, mtls=False) as port:
        yield port


@pytest.fixture
async def mtls_server(certs: CertificateFiles) -> AsyncIterator[int]:
    async with echo_server(certs, mtls=True) as port:
        yield port


async def _call(channel: aio.Channel) -> bytes:
    result: bytes = await channel.unary_unary(ECHO)(b"ping", timeout=5)
    return result


async def test_a_tls_client_talks_to_a_tls_server(tls_server: int, certs: CertificateFiles) -> None:
    tls = channel_tls(settings(grpc_tls=True, grpc_tls_ca_file=str(certs.ca)))
    async with make_channel(f"127.0.0.1:{tls_server}", tls) as channel:
        assert await _call(channel) == b"ping"


async def test_a_plaintext_client_cannot_talk_to_a_tls_server(tls_server: int) -> None:
    async with make_channel(f"127.0.0.1:{tls_server}", channel_tls(settings())) as channel:
        with pytest.raises(aio.AioRpcError) as refused:
            await _call(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_client_that_does_not_trust_the_ca_is_refused(tls_server: int) -> None:
    # the system's roots do not include the throwaway CA
    async with make_channel(f"127.0.0.1:{tls_server}", channel_tls(settings(grpc_tls=True))) as channel:
        with pytest.raises(aio.AioRpcError) as refused:
            await _call(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_server_name_override_is_what_the_certificate_is_checked_against(
    tls_server: int, certs: CertificateFiles
) -> None:
    wrong = channel_tls(
        settings(grpc_tls=True, grpc_tls_ca_file=str(certs.ca), grpc_tls_server_name="auth.prod")
    )
    async with make_channel(f"127.0.0.1:{tls_server}", wrong) as channel:
        with pytest.raises(aio.AioRpcError):
            await _call(channel)
    right = channel_tls(
        settings(grpc_tls=True, grpc_tls_ca_file=str(certs.ca), grpc_tls_server_name="localhost")
    )
    async with make_channel(f"127.0.0.1:{tls_server}", right) as channel:
        assert await _call(channel) == b"ping"


async def test_mutual_tls_needs_a_client_certificate(mtls_server: int, certs: CertificateFiles) -> None:
    anonymous = channel_tls(settings(grpc_tls=True, grpc_tls_ca_file=str(certs.ca)))
    async with make_channel(f"127.0.0.1:{mtls_server}", anonymous) as channel:
        with pytest.raises(aio.AioRpcError) as refused:
            await _call(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    with_cert = channel_tls(
        settings(
            grpc_tls=True,
            grpc_tls_ca_file=str(certs.ca),
            grpc_tls_cert_file=str(certs.client_cert),
            grpc_tls_key_file=str(certs.client_key),
        )
    )
    async with make_channel(f"127.0.0.1:{mtls_server}", with_cert) as channel:
        assert await _call(channel) == b"ping"


def test_plaintext_stays_the_default() -> None:
    plain = settings(kafka_bootstrap="127.0.0.1:9092")
    assert server_tls(plain) is None
    assert channel_tls(plain) is None
    assert kafka_connection(plain).client_options() == {"bootstrap_servers": "127.0.0.1:9092"}


def test_kafka_sasl_ssl_options_and_the_password_never_in_repr(certs: CertificateFiles) -> None:
    connection = kafka_connection(
        settings(
            kafka_bootstrap="broker:9093",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="svc",
            kafka_sasl_password=SecretStr("s3cret-pw"),
            kafka_tls_ca_file=str(certs.ca),
            kafka_tls_check_hostname=False,
        )
    )
    options = connection.client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "s3cret-pw")
    assert options["ssl_context"].check_hostname is False
    assert "s3cret-pw" not in repr(connection)
    assert KafkaConnection("b:1").client_options() == {"bootstrap_servers": "b:1"}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"}, "TOLLGATE_KAFKA_SASL_PASSWORD"),
        ({"kafka_tls_ca_file": "/ca.pem"}, "TOLLGATE_KAFKA_TLS_CA_FILE"),
        ({"kafka_sasl_username": "u"}, "TOLLGATE_KAFKA_SASL_USERNAME"),
        (
            {"kafka_security_protocol": "SSL", "kafka_tls_ca_file": "/nonexistent.pem"},
            "TOLLGATE_KAFKA_TLS_CA_FILE",
        ),
        ({"kafka_security_protocol": "SSL", "kafka_tls_cert_file": "/c.pem"}, "TOLLGATE_KAFKA_TLS_KEY_FILE"),
    ],
)
def test_kafka_settings_that_cannot_work_stop_the_start(values: dict[str, Any], named: str) -> None:
    with pytest.raises(TransportConfigError, match=named):
        kafka_connection(settings(**values))


def test_an_unknown_kafka_protocol_is_refused_by_the_settings() -> None:
    with pytest.raises(ValueError, match="kafka_security_protocol"):
        settings(kafka_security_protocol="TLS")


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"grpc_tls_ca_file": "/ca.pem"}, "TOLLGATE_GRPC_TLS_CA_FILE"),
        ({"grpc_tls": True, "grpc_tls_cert_file": "/c.pem"}, "TOLLGATE_GRPC_TLS_KEY_FILE"),
        ({"grpc_tls": True, "grpc_tls_ca_file": "/nonexistent.pem"}, "TOLLGATE_GRPC_TLS_CA_FILE"),
    ],
)
def test_grpc_channel_settings_that_cannot_work_stop_the_start(values: dict[str, Any], named: str) -> None:
    with pytest.raises(TransportConfigError, match=named):
        channel_tls(settings(**values))


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"grpc_server_tls_client_ca_file": "/ca.pem"}, "TOLLGATE_GRPC_SERVER_TLS_CLIENT_CA_FILE"),
        ({"grpc_server_tls_cert_file": "/c.pem"}, "TOLLGATE_GRPC_SERVER_TLS_KEY_FILE"),
    ],
)
def test_grpc_server_settings_that_cannot_work_stop_the_start(values: dict[str, Any], named: str) -> None:
    with pytest.raises(TransportConfigError, match=named):
        server_tls(settings(**values))


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"redis_tls_ca_file": "/ca.pem"}, "TOLLGATE_REDIS_TLS_CA_FILE"),
        (
            {"redis_url": "rediss://h:1/0", "redis_tls_ca_file": "/nonexistent.pem"},
            "TOLLGATE_REDIS_TLS_CA_FILE",
        ),
        ({"redis_url": "rediss://h:1/0", "redis_tls_key_file": "/k.pem"}, "TOLLGATE_REDIS_TLS_CERT_FILE"),
        ({"redis_sentinels": "h:1,nope"}, "TOLLGATE_REDIS_SENTINELS"),
    ],
)
def test_redis_settings_that_cannot_work_stop_the_start(values: dict[str, Any], named: str) -> None:
    with pytest.raises(TransportConfigError, match=named):
        make_redis(settings(**values))


def test_postgres_tls_parameters_pass_through_to_psycopg(tmp_path: Path) -> None:
    """sslmode/sslrootcert in the URL reach libpq unchanged (docs/operations.md)."""
    url = f"postgresql+psycopg://u:pw@db.internal:5432/tollgate?sslmode=verify-full&sslrootcert={tmp_path}/ca.pem"
    engine = make_engine(url)
    _, connect_kwargs = engine.dialect.create_connect_args(engine.url)
    assert connect_kwargs["sslmode"] == "verify-full"
    assert connect_kwargs["sslrootcert"] == f"{tmp_path}/ca.pem"
