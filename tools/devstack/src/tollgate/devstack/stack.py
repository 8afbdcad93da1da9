"""The whole local platform of one profile: infrastructure, every service, optionally the local model."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tollgate.devstack.config import SERVICES, StackConfig
from tollgate.devstack.kafka_broker import Kafka
from tollgate.devstack.local_embeddings import EmbeddingServer
from tollgate.devstack.local_model import LlamaServer, ModelServerProcess
from tollgate.devstack.postgres import Postgres
from tollgate.devstack.procs import StackError
from tollgate.devstack.redis_server import Redis
from tollgate.devstack.services import ServiceProcess

INFRA = ("postgres", "redis", "kafka")


class _Infra(Protocol):
    log_path: Path

    def start(self) -> None: ...
    def stop(self, kill: bool = False) -> None: ...
    def is_running(self) -> bool: ...
    def pid(self) -> int | None: ...


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    pid: int | None
    port: int
    log_path: Path


class Stack:
    """Start/stop/inspect one profile's stack. Every operation is idempotent and synchronous."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self._infra: dict[str, _Infra] = {
            "postgres": Postgres(cfg),
            "redis": Redis(cfg),
            "kafka": Kafka(cfg),
        }
        self._services = {svc: ServiceProcess(cfg, svc) for svc in SERVICES}
        self._llama = LlamaServer(cfg)
        self._embeddings = EmbeddingServer(cfg)

    # ---- the whole stack ----------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One up/down at a time per profile (say `make up` while a test session starts the stack)."""
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.cfg.run_dir / "stack.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def up(self, local_model: bool = False, *, infra_only: bool = False) -> None:
        """Start whatever is not running yet and return once everything answers.

        `infra_only` starts PostgreSQL, Redis and Kafka alone (what the services' own tests need)."""
        with self._exclusive():
            if infra_only:
                for name in INFRA:
                    self.start_infra(name)
            else:
                self._up(local_model)

    def _up(self, local_model: bool) -> None:
        for name in INFRA:
            self.start_infra(name)
        if local_model:
            # the models load while the services start
            self._llama.spawn()
            self._embeddings.spawn()
        for svc in SERVICES:
            self.start_service(svc)
        if local_model:
            self._llama.start()
            self._llama.register()
            self._embeddings.start()
            self._embeddings.register()

    def down(self) -> None:
        """Stop everything of this profile: the gateway first (no new traffic), infrastructure last."""
        with self._exclusive():
            self._down()

    def _down(self) -> None:
        errors: list[str] = []
        steps: list[_Infra | ServiceProcess | ModelServerProcess] = [
            self._services[s] for s in reversed(SERVICES)
        ]
        steps += [self._llama, self._embeddings]
        steps += [self._infra[n] for n in reversed(INFRA)]
        for comp in steps:
            # keep going: one stubborn process must not leave the rest of the stack running
            try:
                comp.stop()
            except StackError as exc:
                errors.append(str(exc))
        if errors:
            raise StackError("down finished with errors:\n" + "\n".join(errors))

    # ---- single components --------------------------------------------------------------
    def start_infra(self, name: str) -> None:
        """Start postgres, redis or kafka and wait until it is usable (databases/topics exist)."""
        self._infra_of(name).start()

    def stop_infra(self, name: str, kill: bool = False) -> None:
        """A clean stop, or a crash (SIGKILL of every process of it) when `kill`."""
        self._infra_of(name).stop(kill=kill)

    def start_service(self, svc: str, extra_env: Mapping[str, str] | None = None) -> None:
        """Start one service (unless running) and wait for its /healthz; raises with its log tail."""
        self._service_of(svc).start(extra_env=extra_env)

    def stop_service(self, svc: str, kill: bool = False) -> None:
        """SIGKILL when `kill`, else SIGTERM and wait for a clean exit."""
        self._service_of(svc).stop(kill=kill)

    def start_local_model(self) -> None:
        self._llama.start()
        self._llama.register()
        self._embeddings.start()
        self._embeddings.register()

    def is_running(self, name: str) -> bool:
        return self._component(name).is_running()

    def log_path(self, name: str) -> Path:
        return self._component(name).log_path

    def status(self) -> list[ComponentStatus]:
        out = []
        for name in (*INFRA, *SERVICES, "llama", "embeddings"):
            comp = self._component(name)
            pid = comp.pid()
            out.append(ComponentStatus(name, pid is not None, pid, self.cfg.port(name), comp.log_path))
        return out

    # ---- lookup -------------------------------------------------------------------------
    def _infra_of(self, name: str) -> _Infra:
        try:
            return self._infra[name]
        except KeyError:
            raise KeyError(f"unknown infrastructure {name!r}; known: {', '.join(INFRA)}") from None

    def _service_of(self, svc: str) -> ServiceProcess:
        try:
            return self._services[svc]
        except KeyError:
            raise KeyError(f"unknown service {svc!r}; known: {', '.join(SERVICES)}") from None

    def _component(self, name: str) -> _Infra | ServiceProcess | ModelServerProcess:
        if name in self._infra:
            return self._infra[name]
        if name == "llama":
            return self._llama
        if name == "embeddings":
            return self._embeddings
        return self._service_of(name)
