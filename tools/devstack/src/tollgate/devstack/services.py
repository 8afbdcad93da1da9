"""Tollgate's own processes: each service runs from its console script as a separate OS process."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

from tollgate.devstack.config import GRPC_PORT_NAME, METRICS_PORT_NAME, SERVICES, StackConfig
from tollgate.devstack.procs import StackError, port_open, running_pid, spawn, terminate, wait_for, wait_http

HEALTH_TIMEOUT = 60.0


def console_script(svc: str) -> str:
    return "tollgate-" + svc.replace("_", "-")


def _script_path(name: str) -> str:
    # prefer the script next to the running interpreter: the workspace venv, whatever PATH says
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"console script {name} not found; run `uv sync --all-groups` first")
    return found


class ServiceProcess:
    def __init__(self, cfg: StackConfig, svc: str) -> None:
        if svc not in SERVICES:
            raise KeyError(f"unknown service {svc!r}; known: {', '.join(SERVICES)}")
        self.cfg = cfg
        self.name = svc
        self.script = console_script(svc)
        self.pidfile = cfg.run_dir / f"{svc}.pid"
        self.log_path = cfg.logs_dir / f"{svc}.log"

    def pid(self) -> int | None:
        return running_pid(self.pidfile, self.script)

    def is_running(self) -> bool:
        return self.pid() is not None

    def ports(self) -> list[int]:
        ports = [self.cfg.port(self.name)]
        if self.name in GRPC_PORT_NAME:
            ports.append(self.cfg.port(GRPC_PORT_NAME[self.name]))
        if self.name in METRICS_PORT_NAME:
            ports.append(self.cfg.port(METRICS_PORT_NAME[self.name]))
        return ports

    def start(self, extra_env: Mapping[str, str] | None = None, timeout: float = HEALTH_TIMEOUT) -> None:
        health = self.cfg.url(self.name) + "/healthz"
        pid = self.pid()
        if pid is None:
            # A process of ours that just crashed may still be exiting (its last threads hold the
            # sockets a moment after its command line is gone): give the ports a few seconds.
            wait_for(lambda: not any(port_open(p) for p in self.ports()), timeout=5)
            # a foreign listener would answer our health check and hide that ours never started
            busy = [p for p in self.ports() if port_open(p)]
            if busy:
                raise StackError(f"{self.name}: port(s) {busy} in use by a process this stack did not start")
            env = self.cfg.service_env(self.name)
            env.update(extra_env or {})
            pid = spawn(
                [_script_path(self.script)],
                env=env,
                log_path=self.log_path,
                pidfile=self.pidfile,
                cwd=self.cfg.root,
            )
        wait_http(health, name=self.name, pid=pid, log_path=self.log_path, timeout=timeout)

    def stop(self, kill: bool = False, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is not None:
            terminate(pid, kill=kill, timeout=timeout)
            # a restart right after must find its ports free (the kernel may lag the process)
            if not wait_for(lambda: not any(port_open(p) for p in self.ports()), timeout=10):
                raise StackError(f"{self.name}: ports {self.ports()} still bound after it stopped")
        self.pidfile.unlink(missing_ok=True)
