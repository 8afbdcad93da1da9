"""The platform on production's transports (issue 13, item 5): every service reaches Kafka over
SASL_SSL with SCRAM, and auth's and billing's gRPC and billing's hold marks port over mutual TLS,
with certificates from a throwaway CA (tollgate.devstack.secure_transports).

A stack of its own (profile `tls`, the test ports + 2000, TOLLGATE_SECURE_TRANSPORTS=1). The services
are given only the broker's SASL_SSL listener; its PLAINTEXT one serves the stack's own tooling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Iterator

import grpc
import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from tollgate.common.frames import encode_frame
from tollgate.common.kafka import kafka_connection, make_producer
from tollgate.common.settings import ServiceSettings
from tollgate.contracts.v1 import auth_pb2, auth_pb2_grpc, billing_pb2
from tollgate.devstack import secure_transports
from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import expected_cost, ledger_usage, register_model, wait_until

SETTINGS = {"TOLLGATE_PORT_OFFSET": "2000", "TOLLGATE_SECURE_TRANSPORTS": "1"}


@pytest.fixture(scope="module")
def secure() -> Iterator[Stack]:
    stack = Stack(StackConfig.from_env(profile="tls", environ={**os.environ, **SETTINGS}))
    stack.down()  # a stack left running by an earlier session may run with other settings
    stack.up(local_model=False)
    yield stack
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        stack.down()


@pytest.fixture(scope="module")
def config(secure: Stack) -> StackConfig:
    return secure.cfg


def broker_settings(config: StackConfig, **values: object) -> ServiceSettings:
    """A client of the stack's SASL_SSL listener, as the services are configured (or not)."""
    base: dict[str, object] = {
        "kafka_bootstrap": f"127.0.0.1:{config.port('kafka_secure')}",
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": secure_transports.SCRAM_MECHANISM,
        "kafka_sasl_username": secure_transports.KAFKA_USER,
        "kafka_sasl_password": SecretStr(secure_transports.kafka_password(config)),
        "kafka_tls_ca_file": str(secure_transports.certificates(config).ca),
    }
    return ServiceSettings(**{**base, **values})


def test_the_services_are_configured_for_sasl_ssl_and_mutual_tls(config: StackConfig) -> None:
    for svc, prefix in (("gateway", "GATEWAY_"), ("billing_worker", "BILLING_"), ("analytics", "ANALYTICS_")):
        env = config.service_vars(svc)
        assert env[f"{prefix}KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", svc
        assert env[f"{prefix}KAFKA_BOOTSTRAP"] == f"127.0.0.1:{config.port('kafka_secure')}", svc
        assert env[f"{prefix}GRPC_TLS"] == "true", svc
    assert config.service_vars("auth")["AUTH_GRPC_SERVER_TLS_CLIENT_CA_FILE"]


def test_a_paid_request_is_charged_through_tls_and_sasl(config: StackConfig) -> None:
    """gateway → auth (gRPC, mTLS) to authenticate, → billing (gRPC, mTLS) to hold and (marks port,
    mTLS) to mark, → usage.v1 over SASL_SSL → the billing worker (SASL_SSL) settles it in the ledger."""
    headers = {"Authorization": f"Bearer {config.admin_api_key}"}
    with httpx.Client(base_url=config.url("gateway"), headers=headers, timeout=30) as admin:
        register_model(admin, "sim-chat", "sim-chat", config.url("upstream_sim"))
        created = admin.post(
            "/admin/api-key/apply", json={"name": "tls-user", "group_id": 1, "role": "user", "email": ""}
        )
        assert created.status_code == 200, created.text
        key, org_id = created.json()["api_key"], created.json()["org_id"]
        recharged = admin.post("/admin/api-key/recharge", json={"api_key": key, "balance": 1})
        assert recharged.status_code == 200, recharged.text
    body = {"model": "sim-chat", "messages": [{"role": "user", "content": "over tls"}], "max_tokens": 8}
    resp = httpx.post(
        f"{config.url('gateway')}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    usage = resp.json()["usage"]
    cost = expected_cost(usage["prompt_tokens"], usage["completion_tokens"])
    assert cost > 0
    settled = wait_until(
        lambda: ledger_usage(config, org_id) if ledger_usage(config, org_id)[0] else None,
        what="the usage event settled by the billing worker",
    )
    assert settled == (1, cost)
    # its hold was marked over billing's marks port, with the same mutual TLS
    marks = {
        line.split('outcome="')[1].split('"')[0]: float(line.split()[-1])
        for line in httpx.get(config.metrics_url("gateway"), timeout=10).text.splitlines()
        if line.startswith("gateway_hold_marks_total{")
    }
    assert marks.get("sent", 0) >= 1 and marks.get("dropped", 0) == 0, marks
    billing_metrics = httpx.get(config.metrics_url("billing"), timeout=10).text.splitlines()
    accepted = [
        line
        for line in billing_metrics
        if line.startswith('billing_hold_marks_received_total{outcome="accepted"}')
    ]
    assert accepted and float(accepted[0].split()[-1]) >= 1, accepted


async def test_kafka_refuses_a_wrong_password_and_a_client_without_tls(
    config: StackConfig, caplog: pytest.LogCaptureFixture
) -> None:
    right = make_producer(kafka_connection(broker_settings(config)), "tls-test", request_timeout_ms=5000)
    await right.start()  # the same listener accepts the right credentials
    await right.stop()
    caplog.set_level(logging.ERROR, logger="aiokafka")
    wrong = broker_settings(config, kafka_sasl_password=SecretStr("not-the-password"))
    plaintext = ServiceSettings(kafka_bootstrap=f"127.0.0.1:{config.port('kafka_secure')}")
    for settings in (wrong, plaintext):
        producer = make_producer(kafka_connection(settings), "tls-test", request_timeout_ms=5000)
        with pytest.raises(KafkaConnectionError):
            await producer.start()
        await producer.stop()
    # aiokafka says why the wrong password failed; the password itself is never logged
    assert "SaslAuthenticationFailed" in caplog.text
    assert "not-the-password" not in caplog.text


def test_the_scram_password_is_in_no_log(secure: Stack, config: StackConfig) -> None:
    password = secure_transports.kafka_password(config)
    for log in config.logs_dir.glob("*.log"):
        assert password not in log.read_text(errors="replace"), log.name


def test_grpc_refuses_plaintext_and_clients_without_a_certificate(config: StackConfig) -> None:
    files = secure_transports.certificates(config)
    request = auth_pb2.AuthenticateRequest(api_key="tg_nonexistent")
    anonymous = grpc.ssl_channel_credentials(files.ca.read_bytes())
    client_cert = grpc.ssl_channel_credentials(
        files.ca.read_bytes(), files.client_key.read_bytes(), files.client_cert.read_bytes()
    )
    target = config.grpc_target("auth")
    for channel in (grpc.insecure_channel(target), grpc.secure_channel(target, anonymous)):
        with channel, pytest.raises(grpc.RpcError) as refused:
            auth_pb2_grpc.AuthServiceStub(channel).Authenticate(request, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    with grpc.secure_channel(target, client_cert) as channel:
        reply = auth_pb2_grpc.AuthServiceStub(channel).Authenticate(request, timeout=5)
    assert not reply.ok


async def _closed_on(reader: asyncio.StreamReader) -> bool:
    """Whether the peer ends the connection (EOF, a reset, or a TLS alert) instead of serving it."""
    try:
        data = await asyncio.wait_for(reader.read(4096), 5)
    except (ssl.SSLError, ConnectionError):
        return True
    except TimeoutError:
        return False
    return data == b"" or data[:1] == b"\x15"  # EOF, or a TLS alert record and then EOF


async def test_the_marks_port_refuses_plaintext_and_clients_without_a_certificate(
    config: StackConfig,
) -> None:
    files = secure_transports.certificates(config)
    port = config.port("billing_marks")
    # a mark of a hold that does not exist: applying it would change nothing
    frame = encode_frame(
        billing_pb2.HoldMarks(
            marks=[billing_pb2.HoldMark(org_id="no-org", hold_id="no-hold", cost_micros=1, usage_event=b"e")]
        ).SerializeToString()
    )
    anonymous = ssl.create_default_context(cafile=str(files.ca))
    with_cert = ssl.create_default_context(cafile=str(files.ca))
    with_cert.load_cert_chain(str(files.client_cert), str(files.client_key))
    for context, served in ((None, False), (anonymous, False), (with_cert, True)):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        except (ssl.SSLError, ConnectionError):
            assert not served
            continue
        writer.write(frame)  # plaintext: a frame where a TLS handshake must come
        # TLS 1.3: a missing client certificate is refused just after the client's handshake ends
        assert await _closed_on(reader) is not served, context
        writer.close()
