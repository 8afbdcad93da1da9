"""TLS and SASL settings of the clients every service builds (docs/operations.md, "Clients to Kafka,
PostgreSQL, Redis and between services"). Part of ServiceSettings, so each is read under the
service's prefix (GATEWAY_KAFKA_SECURITY_PROTOCOL, AUTH_GRPC_SERVER_TLS_CERT_FILE, ...).

Everything is off by default: the local stack talks plaintext on loopback. File settings are paths
to PEM files (an empty string = not set); a setting that cannot take effect (a CA file for a
plaintext protocol) stops the start instead of being ignored, so TLS is never silently off.
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class TransportSecuritySettings(BaseSettings):
    # ---- Kafka (tollgate.common.kafka.kafka_connection): producers, consumers, admin clients
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # the CA that signed the brokers' certificates (empty: the system's trust store)
    kafka_tls_ca_file: str = ""
    # a client certificate and its key, for brokers that require one (ssl.client.auth=required)
    kafka_tls_cert_file: str = ""
    kafka_tls_key_file: str = ""
    kafka_tls_check_hostname: bool = True

    # ---- gRPC between services (tollgate.common.grpc). Clients: channels to auth and billing.
    grpc_tls: bool = False
    grpc_tls_ca_file: str = ""  # empty: the system's trust store
    grpc_tls_cert_file: str = ""  # client certificate, for servers that require one (mTLS)
    grpc_tls_key_file: str = ""
    # the name checked against the server's certificate instead of the target's host
    grpc_tls_server_name: str = ""
    # Servers (auth's and billing's gRPC port): TLS once a certificate is set; with a client CA,
    # only clients presenting a certificate it signed are served (mTLS).
    grpc_server_tls_cert_file: str = ""
    grpc_server_tls_key_file: str = ""
    grpc_server_tls_client_ca_file: str = ""

    # ---- Redis (tollgate.common.redis.make_redis). TLS: a rediss:// URL plus these files.
    redis_password: SecretStr = SecretStr("")  # used when redis_url names none
    redis_tls_ca_file: str = ""
    redis_tls_cert_file: str = ""
    redis_tls_key_file: str = ""
    redis_tls_check_hostname: bool = True
    # Sentinel: "host:port,host:port". Set, the master of redis_sentinel_master is asked of the
    # sentinels (and followed through failovers); redis_url then gives only the database, user,
    # password and scheme (rediss:// = TLS to the master, replicas and sentinels), not the host.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_password: SecretStr = SecretStr("")

    def env_name(self, field: str) -> str:
        """The environment variable that sets `field` for this service (for error messages)."""
        return f"{self.model_config.get('env_prefix', '')}{field}".upper()
