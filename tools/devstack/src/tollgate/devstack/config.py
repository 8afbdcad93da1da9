"""Where every piece of the local stack lives: ports, URLs, state directories and each service's env."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tollgate.devstack import secure_transports

DEFAULT_PROFILE = "dev"

PORT_NAMES = (
    "postgres",
    "redis",
    "kafka",
    "kafka_controller",
    "gateway",
    "auth",
    "auth_grpc",
    "billing",
    "billing_grpc",
    "billing_marks",
    "billing_worker",
    "analytics",
    "training",
    "training_worker",
    "upstream_sim",
    "feishu_sim",
    "llama",
    "embeddings",  # the local embedding model's OpenAI-compatible server (local_embeddings.py)
    # Prometheus' /metrics of each of our processes, never on its public HTTP port
    "gateway_metrics",
    "auth_metrics",
    "billing_metrics",
    "billing_worker_metrics",
    "analytics_metrics",
    "training_metrics",
    "training_worker_metrics",
    # Kafka's SASL_SSL listener, only with TOLLGATE_SECURE_TRANSPORTS=1 (secure_transports.py)
    "kafka_secure",
)

PROFILE_PORTS: dict[str, dict[str, int]] = {
    "dev": {
        "postgres": 55432,
        "redis": 56379,
        "kafka": 59092,
        "kafka_controller": 59093,
        "gateway": 8080,
        "auth": 8081,
        "auth_grpc": 50051,
        "billing": 8082,
        "billing_grpc": 50052,
        "billing_marks": 50053,
        "billing_worker": 8085,
        "analytics": 8083,
        "training": 8084,
        "training_worker": 8086,
        "upstream_sim": 8090,
        "feishu_sim": 8095,
        "llama": 8091,
        "embeddings": 8092,
        # the HTTP port + 1100 (9090, Prometheus' own default, stays free)
        "gateway_metrics": 9180,
        "auth_metrics": 9181,
        "billing_metrics": 9182,
        "billing_worker_metrics": 9185,
        "analytics_metrics": 9183,
        "training_metrics": 9184,
        "training_worker_metrics": 9186,
        "kafka_secure": 59094,
    },
    # Below 32768, Linux's first ephemeral port, even moved by TOLLGATE_PORT_OFFSET up to 3000: a
    # listener restarted inside the ephemeral range can find its port taken by an outgoing socket
    # (seen: billing's gRPC port held by a client connection to PostgreSQL in the fault suite).
    "test": {
        "postgres": 25532,
        "redis": 26479,
        "kafka": 29192,
        "kafka_controller": 29193,
        "gateway": 18080,
        "auth": 18081,
        "auth_grpc": 21051,
        "billing": 18082,
        "billing_grpc": 21052,
        "billing_marks": 21053,
        "billing_worker": 18085,
        "analytics": 18083,
        "training": 18084,
        "training_worker": 18086,
        "upstream_sim": 18090,
        "feishu_sim": 18095,
        "llama": 18091,
        "embeddings": 18092,
        # the HTTP port + 100: apart from every port above moved by any multiple of 500
        "gateway_metrics": 18180,
        "auth_metrics": 18181,
        "billing_metrics": 18182,
        "billing_worker_metrics": 18185,
        "analytics_metrics": 18183,
        "training_metrics": 18184,
        "training_worker_metrics": 18186,
        "kafka_secure": 29194,
    },
}

# Services that own a database (tollgate_<svc>) and read the shared ServiceSettings under <SVC>_.
DB_SERVICES = ("auth", "gateway", "billing", "analytics", "training")
# Start order: the simulator first (providers), then what the gateway calls, the gateway last.
SERVICES = (
    "upstream_sim",
    "feishu_sim",  # Feishu's open platform, for the bots (tools/feishu-sim)
    "auth",
    "billing",
    "billing_worker",
    "analytics",
    "training",
    "training_worker",
    "gateway",
)
ENV_PREFIX = {
    "auth": "AUTH_",
    "gateway": "GATEWAY_",
    "billing": "BILLING_",
    "billing_worker": "BILLING_",  # billing's usage consumer: same settings, its own process
    "analytics": "ANALYTICS_",
    "training": "TRAINING_",
    "training_worker": "TRAINING_",  # leases and runs training jobs: same settings, its own process
    "upstream_sim": "SIM_",
    "feishu_sim": "FEISHU_SIM_",
}
GRPC_PORT_NAME = {"auth": "auth_grpc", "billing": "billing_grpc"}
# every process of ours but the simulators serves Prometheus metrics on a port of its own
SIMULATORS = ("upstream_sim", "feishu_sim")
METRICS_PORT_NAME = {svc: f"{svc}_metrics" for svc in SERVICES if svc not in SIMULATORS}
# processes that use another service's database
DATABASE_OF = {"billing_worker": "billing", "training_worker": "training"}
HTTP_PROCESSES = (*SERVICES, "llama", "embeddings")

# Where billing sends alert e-mail: the test profile's server is started by the alert tests;
# in dev run one with `uv run python -m aiosmtpd -n -l 127.0.0.1:1025` (or set BILLING_SMTP_*).
SMTP_PORT = {"dev": 1025, "test": 18025}

_PROFILE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _repo_root() -> Path:
    # tools/devstack/src/tollgate/devstack/config.py -> five levels up is the workspace root
    return Path(__file__).resolve().parents[5]


@dataclass
class StackConfig:
    """Resolved settings of one profile's stack. Build it with `StackConfig.from_env`."""

    profile: str
    root: Path
    ports: dict[str, int]
    environ: Mapping[str, str] = field(repr=False)
    _admin_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls,
        profile: str | None = None,
        environ: Mapping[str, str] | None = None,
        root: Path | None = None,
    ) -> StackConfig:
        """`environ` defaults to os.environ and `root` to this checkout (both overridable for tests)."""
        env = dict(os.environ if environ is None else environ)
        name = profile or env.get("TOLLGATE_PROFILE") or DEFAULT_PROFILE
        if not _PROFILE_RE.match(name):
            raise ValueError(f"invalid profile name {name!r}")
        # An unknown profile (a private scratch stack) starts from the test ports, moved as a block
        # by TOLLGATE_PORT_OFFSET (e.g. 1000) or one by one with TOLLGATE_<NAME>_PORT, so that
        # it does not collide with the test profile's stack.
        if name in PROFILE_PORTS:
            ports = dict(PROFILE_PORTS[name])
        else:
            offset = int(env.get("TOLLGATE_PORT_OFFSET") or 0)
            ports = {port_name: port + offset for port_name, port in PROFILE_PORTS["test"].items()}
        for port_name in PORT_NAMES:
            override = env.get(f"TOLLGATE_{port_name.upper()}_PORT")
            if override:
                ports[port_name] = int(override)
        return cls(profile=name, root=root or _repo_root(), ports=ports, environ=env)

    # ---- locations -------------------------------------------------------------------------
    @property
    def local_dir(self) -> Path:
        return self.root / ".local"

    @property
    def state_dir(self) -> Path:
        return self.local_dir / self.profile

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def kafka_libs_dir(self) -> Path:
        # shared by every profile: the jars do not depend on state
        return self.local_dir / "kafka-libs"

    @property
    def models_dir(self) -> Path:
        return self.local_dir / "models"

    @property
    def training_dir(self) -> Path:
        """Uploaded files, checkpoints and adapters (the llama server reads adapters from here)."""
        return self.state_dir / "training"

    @property
    def adapters_dir(self) -> Path:
        return self.training_dir / "adapters"

    @property
    def deploy_dir(self) -> Path:
        return self.root / "deploy" / "local"

    @property
    def secure_transports(self) -> bool:
        """TOLLGATE_SECURE_TRANSPORTS=1: the services reach Kafka over SASL_SSL (SCRAM) and each
        other's gRPC over mutual TLS, as in production (secure_transports.py)."""
        return self.environ.get("TOLLGATE_SECURE_TRANSPORTS") == "1"

    @property
    def crash_safe_commits(self) -> bool:
        """TOLLGATE_CRASH_SAFE_COMMITS=1 keeps PostgreSQL's synchronous commit on a test profile: an
        asynchronous commit is acknowledged before its WAL leaves shared memory, so a SIGKILLed
        server loses the last ~0.5 s of acknowledged transactions — exactly what the crash tests
        (tests/integration/test_faults.py) must not have taken from them. fsync may stay off: a
        process crash keeps what reached the kernel."""
        return self.environ.get("TOLLGATE_CRASH_SAFE_COMMITS") == "1"

    @property
    def tuned_for_tests(self) -> bool:
        """Durability traded for speed (fsync off) only where data is disposable."""
        return self.profile != "dev"

    # ---- endpoints ----------------------------------------------------------------------
    def port(self, name: str) -> int:
        try:
            return self.ports[name]
        except KeyError:
            raise KeyError(f"unknown port name {name!r}; known: {', '.join(PORT_NAMES)}") from None

    def url(self, name: str) -> str:
        if name not in HTTP_PROCESSES:
            raise KeyError(f"{name!r} is not an HTTP process; known: {', '.join(HTTP_PROCESSES)}")
        return f"http://127.0.0.1:{self.port(name)}"

    def database_url(self, svc: str) -> str:
        if svc not in DB_SERVICES:
            raise KeyError(f"{svc!r} owns no database; known: {', '.join(DB_SERVICES)}")
        return f"postgresql+psycopg://tollgate@127.0.0.1:{self.port('postgres')}/tollgate_{svc}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port('redis')}/0"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.port('kafka')}"

    def metrics_url(self, svc: str) -> str:
        """Where Prometheus scrapes `svc` (a process in METRICS_PORT_NAME)."""
        if svc not in METRICS_PORT_NAME:
            raise KeyError(f"{svc!r} serves no metrics; known: {', '.join(METRICS_PORT_NAME)}")
        return f"http://127.0.0.1:{self.port(METRICS_PORT_NAME[svc])}/metrics"

    def grpc_target(self, svc: str) -> str:
        return f"127.0.0.1:{self.port(GRPC_PORT_NAME[svc])}"

    # ---- secrets ------------------------------------------------------------------------
    @property
    def admin_api_key(self) -> str:
        """ADMIN_API_KEY if set, else a key generated once and kept (0600) in the state dir."""
        if self._admin_key is None:
            self._admin_key = self.environ.get("ADMIN_API_KEY") or self._stored_admin_key()
        return self._admin_key

    def _stored_admin_key(self) -> str:
        return self._stored_secret("admin_api_key", "tg-admin-")

    @property
    def payments_webhook_secret(self) -> str:
        """The test payment provider's webhook secret (BILLING_PAYMENTS_TEST_WEBHOOK_SECRET if set,
        else generated once and kept like the admin key); tests sign provider webhooks with it."""
        return self.environ.get("BILLING_PAYMENTS_TEST_WEBHOOK_SECRET") or self._stored_secret(
            "payments_webhook_secret", "whsec_"
        )

    def stored_secret(self, name: str, prefix: str = "") -> str:
        """A credential of the stack itself (e.g. Kafka's SCRAM password), generated once, kept 0600."""
        return self._stored_secret(name, prefix)

    def _stored_secret(self, name: str, prefix: str) -> str:
        path = self.secrets_dir / name
        if path.exists():
            return path.read_text().strip()
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.chmod(0o700)
        key = prefix + secrets.token_urlsafe(32)
        # O_EXCL + 0600 from creation: the key is never readable by others, even for an instant
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
        return key

    # ---- service environment ------------------------------------------------------------
    def service_vars(self, svc: str) -> dict[str, str]:
        """Only the variables the stack sets for `svc` (what `service_env` adds to os.environ)."""
        if svc not in ENV_PREFIX:
            raise KeyError(f"unknown service {svc!r}; known: {', '.join(SERVICES)}")
        out = {"TOLLGATE_PROFILE": self.profile, "PYTHONUNBUFFERED": "1"}
        if svc == "upstream_sim":
            out.update({"SIM_HOST": "127.0.0.1", "SIM_PORT": str(self.port("upstream_sim"))})
            return out
        if svc == "feishu_sim":
            out.update({"FEISHU_SIM_HOST": "127.0.0.1", "FEISHU_SIM_PORT": str(self.port("feishu_sim"))})
            return out
        p = ENV_PREFIX[svc]
        out.update(
            {
                f"{p}HTTP_HOST": "127.0.0.1",
                f"{p}HTTP_PORT": str(self.port(svc)),
                f"{p}DATABASE_URL": self.database_url(DATABASE_OF.get(svc, svc)),
                f"{p}REDIS_URL": self.redis_url,
                f"{p}KAFKA_BOOTSTRAP": self.kafka_bootstrap,
                f"{p}AUTH_GRPC_TARGET": self.grpc_target("auth"),
                f"{p}BILLING_GRPC_TARGET": self.grpc_target("billing"),
            }
        )
        if svc in GRPC_PORT_NAME:
            out[f"{p}GRPC_PORT"] = str(self.port(GRPC_PORT_NAME[svc]))
        if svc in ("billing_worker", "training_worker"):
            # a worker reads its service's settings: its own ports are <P>WORKER_*, the API's stay
            out[f"{p}WORKER_METRICS_PORT"] = str(self.port(METRICS_PORT_NAME[svc]))
        else:
            out[f"{p}METRICS_PORT"] = str(self.port(METRICS_PORT_NAME[svc]))
        if svc == "billing":
            out["BILLING_MARKS_PORT"] = str(self.port("billing_marks"))
        if svc == "billing_worker":
            out["BILLING_WORKER_HTTP_PORT"] = str(self.port(svc))
            out["BILLING_HTTP_PORT"] = str(self.port("billing"))
        if svc == "gateway":
            out["GATEWAY_BILLING_MARKS_TARGET"] = f"127.0.0.1:{self.port('billing_marks')}"
            for target in ("auth", "billing", "analytics", "training"):
                out[f"GATEWAY_{target.upper()}_HTTP_URL"] = self.url(target)
            if self.tuned_for_tests:
                # route limits a test can reach (gateway limits/route_limits.py): client addresses
                # named by X-Forwarded-For behind trusted proxies, and an IndoxRouter hourly limit
                # small enough to spend;
                tuned = {
                    # the tests' requests come from loopback, "through" a proxy at 10.0.0.1
                    "GATEWAY_TRUSTED_PROXIES": "127.0.0.0/8,10.0.0.0/8",
                    "GATEWAY_INDOXROUTER_REQUESTS_PER_HOUR": "60",
                    # SloughGPT's curl example names no model: the suite's simulator chat model
                    "GATEWAY_SLOUGHGPT_DEFAULT_MODEL": "sim-chat",
                    # Feishu bots talk to the Feishu simulator (tools/feishu-sim), never to Feishu
                    "GATEWAY_FEISHU_API_BASE_URL": self.url("feishu_sim"),
                    "GATEWAY_FEISHU_POLL_S": "0.5",
                }
                out.update({k: v for k, v in tuned.items() if k not in self.environ})
        interval = "ANALYTICS_PARTITION_MAINTENANCE_INTERVAL_S"
        if svc == "analytics" and self.tuned_for_tests and interval not in self.environ:
            # usage partitions made and dropped within seconds (the retention test waits for it)
            out[interval] = "2"
        if svc in ("billing", "billing_worker"):
            out.update({k: v for k, v in self.alert_vars().items() if k not in self.environ})
        if svc in ("training", "training_worker"):
            out.update(self.training_vars(svc))
        if svc == "billing":
            out["BILLING_PAYMENTS_TEST_WEBHOOK_SECRET"] = self.payments_webhook_secret
        # auth bootstraps the admin principal from it; the others get it too so an admin-only
        # check never depends on which process happens to evaluate it
        out["ADMIN_API_KEY"] = self.admin_api_key
        if svc == "auth":
            out["AUTH_ADMIN_API_KEY"] = self.admin_api_key
        if self.secure_transports:
            out.update(secure_transports.service_vars(self, p, grpc_server=svc in GRPC_PORT_NAME))
        return out

    def alert_vars(self) -> dict[str, str]:
        """Billing's alert delivery: local SMTP, and quick retries where data is disposable."""
        port = self.environ.get("TOLLGATE_SMTP_PORT") or str(SMTP_PORT.get(self.profile, SMTP_PORT["test"]))
        out = {
            "BILLING_SMTP_HOST": "127.0.0.1",
            "BILLING_SMTP_PORT": port,
            # everything of the local stack, webhook receivers included, lives on 127.0.0.1
            "BILLING_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        }
        if self.tuned_for_tests:
            out.update(
                {
                    "BILLING_ALERT_DISPATCH_INTERVAL_SECONDS": "0.2",
                    "BILLING_ALERT_RETRY_BASE_SECONDS": "0.2",
                    "BILLING_ALERT_RETRY_MAX_SECONDS": "2",
                    "BILLING_ALERT_MAX_ATTEMPTS": "3",
                    "BILLING_ALERT_LEASE_SECONDS": "5",
                    "BILLING_WEBHOOK_TIMEOUT_SECONDS": "3",
                }
            )
        return out

    def training_vars(self, svc: str) -> dict[str, str]:
        """Where training keeps its data; the dequantized base is shared by every profile."""
        out = {
            "TRAINING_DATA_DIR": str(self.training_dir),
            "TRAINING_BASE_CACHE_DIR": str(self.models_dir / "bases"),
        }
        if svc == "training_worker":
            out["TRAINING_WORKER_HTTP_PORT"] = str(self.port(svc))
            out["TRAINING_HTTP_PORT"] = str(self.port("training"))
        if self.tuned_for_tests:
            # a dead worker's job is taken over within seconds (the SIGKILL test waits for that)
            out.update({"TRAINING_LEASE_TTL_S": "6", "TRAINING_HEARTBEAT_S": "1"})
        return {k: v for k, v in out.items() if k not in self.environ}

    def service_env(self, svc: str) -> dict[str, str]:
        """os.environ plus the stack's variables for `svc`; the stack's win so ports always agree."""
        env = dict(self.environ)
        env.update(self.service_vars(svc))
        return env
