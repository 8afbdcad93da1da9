"""What TOLLGATE_SECURE_TRANSPORTS=1 hands to Kafka and to the services (secure_transports.py)."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509

from tollgate.devstack import secure_transports
from tollgate.devstack.certificates import ensure_certificates
from tollgate.devstack.config import StackConfig
from tollgate.devstack.kafka_broker import Kafka

REPO = StackConfig.from_env(environ={}).root


def secure_cfg(tmp_path: Path, *, on: bool = True) -> StackConfig:
    (tmp_path / "deploy").symlink_to(REPO / "deploy")
    env = {"ADMIN_API_KEY": "k", "TOLLGATE_SECURE_TRANSPORTS": "1" if on else "0"}
    return StackConfig.from_env(profile="test", environ=env, root=tmp_path)


def props(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


def test_kafka_gains_a_sasl_ssl_listener_beside_plaintext(tmp_path: Path) -> None:
    cfg = secure_cfg(tmp_path)
    rendered = props(Kafka(cfg).render())
    assert rendered["listeners"] == (
        "PLAINTEXT://127.0.0.1:29192,CONTROLLER://127.0.0.1:29193,SASL_SSL://127.0.0.1:29194"
    )
    assert rendered["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29192,SASL_SSL://127.0.0.1:29194"
    assert rendered["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")
    assert rendered["inter.broker.listener.name"] == "PLAINTEXT"
    assert rendered["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    files = secure_transports.certificates(cfg)
    chain = rendered["listener.name.sasl_ssl.ssl.keystore.certificate.chain"].replace("\\n", "\n")
    assert chain == files.server_cert.read_text().strip()
    assert rendered["listener.name.sasl_ssl.ssl.keystore.type"] == "PEM"
    assert "PRIVATE KEY" in rendered["listener.name.sasl_ssl.ssl.keystore.key"]


def test_without_the_setting_nothing_changes(tmp_path: Path) -> None:
    cfg = secure_cfg(tmp_path, on=False)
    assert "SASL_SSL" not in Kafka(cfg).render()
    assert not any("TLS" in name or "SASL" in name for name in cfg.service_vars("gateway"))
    assert not (cfg.state_dir / "tls").exists()


def test_services_get_the_secure_listener_and_mutual_tls(tmp_path: Path) -> None:
    cfg = secure_cfg(tmp_path)
    gateway = cfg.service_vars("gateway")
    assert gateway["GATEWAY_KAFKA_BOOTSTRAP"] == "127.0.0.1:29194"
    assert gateway["GATEWAY_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert gateway["GATEWAY_KAFKA_SASL_PASSWORD"] == secure_transports.kafka_password(cfg)
    assert gateway["GATEWAY_GRPC_TLS_CERT_FILE"].endswith("client.pem")
    assert "GATEWAY_GRPC_SERVER_TLS_CERT_FILE" not in gateway  # the gateway serves no gRPC
    auth = cfg.service_vars("auth")
    assert auth["AUTH_GRPC_SERVER_TLS_CERT_FILE"].endswith("server.pem")
    assert auth["AUTH_GRPC_SERVER_TLS_CLIENT_CA_FILE"].endswith("ca.pem")
    # SCRAM users are created at format time with the same password
    assert secure_transports.scram_format_args(cfg) == [
        "--add-scram",
        f"SCRAM-SHA-512=[name=tollgate,password={secure_transports.kafka_password(cfg)}]",
    ]


def test_the_throwaway_ca_signs_a_server_certificate_for_loopback(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    client = x509.load_pem_x509_certificate(files.client_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    for key in (files.server_key, files.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # generated once: a second call keeps the same set (running clients keep trusting it)
    before = files.ca.read_bytes()
    assert ensure_certificates(tmp_path / "tls").ca.read_bytes() == before
