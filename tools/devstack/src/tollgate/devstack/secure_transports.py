"""The local stack on production's transports (TOLLGATE_SECURE_TRANSPORTS=1): every service talks to
Kafka over SASL_SSL with SCRAM, and to auth's and billing's gRPC over mutual TLS, with certificates
from a throwaway CA kept in the profile's state (.local/<profile>/tls).

The broker keeps its PLAINTEXT listener beside the SASL_SSL one, for the stack's own tooling
(readiness probes, topic creation, the tests' event publishers); the services get only the secure one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tollgate.devstack.certificates import CertificateFiles, ensure_certificates

if TYPE_CHECKING:
    from tollgate.devstack.config import StackConfig

KAFKA_USER = "tollgate"
SCRAM_MECHANISM = "SCRAM-SHA-512"
SECURE_LISTENER = "SASL_SSL"


def certificates(cfg: StackConfig) -> CertificateFiles:
    return ensure_certificates(cfg.state_dir / "tls")


def kafka_password(cfg: StackConfig) -> str:
    """The SCRAM password of KAFKA_USER: generated once, kept 0600 like the admin key."""
    return cfg.stored_secret("kafka_scram_password", "")


def service_vars(cfg: StackConfig, prefix: str, *, grpc_server: bool) -> dict[str, str]:
    """A service's settings for the secure transports (under its env prefix)."""
    files = certificates(cfg)
    out = {
        f"{prefix}KAFKA_BOOTSTRAP": f"127.0.0.1:{cfg.port('kafka_secure')}",
        f"{prefix}KAFKA_SECURITY_PROTOCOL": SECURE_LISTENER,
        f"{prefix}KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
        f"{prefix}KAFKA_SASL_USERNAME": KAFKA_USER,
        f"{prefix}KAFKA_SASL_PASSWORD": kafka_password(cfg),
        f"{prefix}KAFKA_TLS_CA_FILE": str(files.ca),
        f"{prefix}GRPC_TLS": "true",
        f"{prefix}GRPC_TLS_CA_FILE": str(files.ca),
        f"{prefix}GRPC_TLS_CERT_FILE": str(files.client_cert),
        f"{prefix}GRPC_TLS_KEY_FILE": str(files.client_key),
    }
    if grpc_server:
        out.update(
            {
                f"{prefix}GRPC_SERVER_TLS_CERT_FILE": str(files.server_cert),
                f"{prefix}GRPC_SERVER_TLS_KEY_FILE": str(files.server_key),
                f"{prefix}GRPC_SERVER_TLS_CLIENT_CA_FILE": str(files.ca),
            }
        )
    return out


def kafka_properties(cfg: StackConfig, rendered: str) -> str:
    """`rendered` (the plaintext broker's properties) with a SASL_SSL listener added: SCRAM users
    (created at format time, `scram_format_args`), a PEM keystore given inline (Kafka reads an
    unencrypted PEM key only from the property, not from a file)."""
    port = cfg.port("kafka_secure")
    listener = f"{SECURE_LISTENER}://127.0.0.1:{port}"
    lines = []
    for line in rendered.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("listeners", "advertised.listeners"):
            line = f"{key}={value},{listener}"
        elif sep and key == "listener.security.protocol.map":
            line = f"{key}={value},{SECURE_LISTENER}:{SECURE_LISTENER}"
        lines.append(line)
    files = certificates(cfg)
    prefix = f"listener.name.{SECURE_LISTENER.lower()}"
    lines += [
        "",
        "# TOLLGATE_SECURE_TRANSPORTS=1 (tollgate.devstack.secure_transports): SASL_SSL with SCRAM",
        f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
        f"{prefix}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        f"{prefix}.ssl.keystore.type=PEM",
        f"{prefix}.ssl.keystore.certificate.chain={_inline(files.server_cert.read_text())}",
        f"{prefix}.ssl.keystore.key={_inline(files.server_key.read_text())}",
        f"{prefix}.ssl.client.auth=none",
    ]
    return "\n".join(lines) + "\n"


def scram_format_args(cfg: StackConfig) -> list[str]:
    """kafka-storage format's --add-scram: KRaft keeps SCRAM credentials in its metadata log."""
    return ["--add-scram", f"{SCRAM_MECHANISM}=[name={KAFKA_USER},password={kafka_password(cfg)}]"]


def _inline(pem: str) -> str:
    # a properties value on one line: `\n` escapes are read back as newlines
    return pem.strip().replace("\n", "\\n")
