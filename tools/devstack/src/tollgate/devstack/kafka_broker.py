"""Apache Kafka 4.4 (KRaft, one combined node) from the jars Maven resolves, on the machine's Java 17."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import shutil
import subprocess
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from string import Template
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import KafkaError

from tollgate.common.kafka import TOPICS, ensure_topics
from tollgate.common.waits import timed
from tollgate.devstack import secure_transports
from tollgate.devstack.config import StackConfig
from tollgate.devstack.procs import (
    StackError,
    log_tail,
    pid_alive,
    port_open,
    running_pid,
    spawn,
    terminate,
)

T = TypeVar("T")

HEAP = ["-Xms256m", "-Xmx512m"]


def run_coro(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when the caller already runs a loop
    (the integration tests call the stack from async tests): a private loop in a worker thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def new_cluster_id() -> str:
    """Kafka's cluster id format: 16 random bytes, URL-safe base64 without padding (22 chars)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka avoids ids that a CLI would read as an option
            return cid


def render_server_properties(template: str, *, broker_port: int, controller_port: int, log_dirs: Path) -> str:
    return Template(template).substitute(
        broker_port=broker_port, controller_port=controller_port, log_dirs=str(log_dirs)
    )


def resolve_jars(cfg: StackConfig) -> Path:
    """Copy the broker's jars from Maven once into .local/kafka-libs (re-done if the pom changes)."""
    pom = cfg.deploy_dir / "kafka" / "pom.xml"
    libs = cfg.kafka_libs_dir
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    stamp = libs / ".pom-sha256"
    if stamp.exists() and stamp.read_text().strip() == digest and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (mvn) is needed once to fetch Kafka's jars: apt-get install maven")
    staging = libs.with_name(libs.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={staging}"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise StackError(f"maven could not resolve Kafka's jars:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
    # swap in whole: a half-copied libs dir must never look resolved
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    stamp.write_text(digest + "\n")
    return libs


class Kafka:
    name = "kafka"

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.base = cfg.state_dir / "kafka"
        self.data = self.base / "data"
        self.properties = self.base / "server.properties"
        # written when the storage was formatted with SCRAM users (TOLLGATE_SECURE_TRANSPORTS=1)
        self.scram_stamp = self.base / "scram-users"
        self.pidfile = cfg.run_dir / "kafka.pid"
        self.log_path = cfg.logs_dir / "kafka.log"

    # the rendered properties path is unique per profile, so it also tells our broker from others
    def pid(self) -> int | None:
        return running_pid(self.pidfile, str(self.properties))

    def is_running(self) -> bool:
        return self.pid() is not None

    def render(self) -> str:
        template = (self.cfg.deploy_dir / "kafka" / "server.properties.tmpl").read_text()
        rendered = render_server_properties(
            template,
            broker_port=self.cfg.port("kafka"),
            controller_port=self.cfg.port("kafka_controller"),
            log_dirs=self.data,
        )
        if self.cfg.secure_transports:
            return secure_transports.kafka_properties(self.cfg, rendered)
        return rendered

    def _java(self, libs: Path, main: str, *args: str, heap: list[str] | None = None) -> list[str]:
        java = shutil.which("java") or "java"
        log4j = self.cfg.deploy_dir / "kafka" / "log4j2.yaml"
        return [
            java,
            *(heap or []),
            "-Djava.awt.headless=true",
            # Kafka stops itself on SIGTERM; log4j's own hook would only warn that it came too late
            "-Dlog4j2.shutdownHookEnabled=false",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def _format_once(self, libs: Path) -> None:
        secure = self.cfg.secure_transports
        if (self.data / "meta.properties").exists():
            if secure and not self.scram_stamp.exists():
                raise StackError(
                    f"{self.data} was formatted without SCRAM users, which KRaft creates only at format "
                    f"time: stop the {self.cfg.profile!r} stack and remove {self.base} to start it with "
                    "TOLLGATE_SECURE_TRANSPORTS=1"
                )
            return
        self.data.mkdir(parents=True, exist_ok=True)
        cluster_id = new_cluster_id()
        scram = secure_transports.scram_format_args(self.cfg) if secure else []
        cmd = self._java(
            libs, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(self.properties), *scram
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            output = proc.stdout + proc.stderr
            if secure:
                output = output.replace(secure_transports.kafka_password(self.cfg), "***")
            raise StackError(f"kafka storage format failed:\n{output}")
        if secure:
            self.scram_stamp.write_text(secure_transports.KAFKA_USER + "\n")

    def start(self, timeout: float = 90.0) -> None:
        libs = resolve_jars(self.cfg)
        if not self.is_running():
            for d in (self.base, self.cfg.run_dir, self.cfg.logs_dir):
                d.mkdir(parents=True, exist_ok=True)
            # owner-only: with secure transports it holds the listener's private key
            self.properties.touch(mode=0o600)
            self.properties.chmod(0o600)
            self.properties.write_text(self.render())
            self._format_once(libs)
            spawn(
                self._java(libs, "kafka.Kafka", str(self.properties), heap=HEAP),
                env=self.cfg.environ,
                log_path=self.log_path,
                pidfile=self.pidfile,
                cwd=self.base,
            )
        try:
            run_coro(self._wait_usable(timeout))
        except TimeoutError:
            raise StackError(
                f"kafka not usable at {self.cfg.kafka_bootstrap} after {timeout:.0f}s; log:\n"
                f"{log_tail(self.log_path)}"
            ) from None

    def stop(self, kill: bool = False, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is not None:
            # SIGTERM lets the broker close its logs cleanly, so the next start skips recovery;
            # SIGKILL (`kill`) is a crash: the next start recovers its logs
            terminate(pid, kill=kill, timeout=timeout)
        self.pidfile.unlink(missing_ok=True)

    async def _wait_usable(self, limit_s: float) -> None:
        async with asyncio.timeout(limit_s):
            # wait for the listener before asking aiokafka, which logs every refused connection
            while not (port_open(self.cfg.port("kafka")) and await self._probe()):
                pid = self.pid()
                if pid is None or not pid_alive(pid):
                    raise StackError(f"kafka exited during start; log:\n{log_tail(self.log_path)}")
                await asyncio.sleep(0.3)
            await ensure_topics(self.cfg.kafka_bootstrap)
            # polling a remote broker, no local event to wait on
            while not (await self._leaders_ready() and await self._group_coordinator_ready()):  # noqa: ASYNC110
                await asyncio.sleep(0.3)

    async def _probe(self) -> bool:
        """True once the broker answers metadata requests."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.cfg.kafka_bootstrap, client_id="tollgate-devstack", request_timeout_ms=3000
        )
        try:
            await timed(admin.start(), 5)
            await timed(admin.list_topics(), 5)
            return True
        except Exception:  # any failure here only means "not ready yet"; the loop retries
            return False
        finally:
            await admin.close()

    async def _group_coordinator_ready(self) -> bool:
        """Ask for a group coordinator: the first ask makes the broker create __consumer_offsets,
        so the services' consumers join at once instead of retrying GroupCoordinatorNotAvailable."""
        client = AIOKafkaClient(bootstrap_servers=self.cfg.kafka_bootstrap, request_timeout_ms=3000)
        try:
            await client.bootstrap()
            await client.coordinator_lookup(CoordinationType.GROUP, "tollgate-devstack-warmup")
            return True
        except KafkaError:  # not available yet; retried by the caller
            return False
        finally:
            await client.close()

    async def _leaders_ready(self) -> bool:
        """Every partition of our topics has a leader (just after a restart some may not yet)."""
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.cfg.kafka_bootstrap, client_id="tollgate-devstack", request_timeout_ms=3000
        )
        try:
            await admin.start()
            described = await admin.describe_topics(list(TOPICS))
        except Exception:  # transient during broker start; retried by the caller
            return False
        finally:
            await admin.close()
        for topic in described:
            if topic.get("error_code", 0) != 0 or not topic.get("partitions"):
                return False
            if any(p.get("leader", -1) < 0 for p in topic["partitions"]):
                return False
        return True
