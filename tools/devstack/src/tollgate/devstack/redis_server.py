"""Redis from Debian's redis-server, daemonized, append-only (the gateway's usage spool lives in it)."""

from __future__ import annotations

import shutil
import socket
import subprocess

from tollgate.devstack.config import StackConfig
from tollgate.devstack.procs import StackError, log_tail, running_pid, terminate, wait_for


class Redis:
    name = "redis"

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.data = cfg.state_dir / "redis"
        self.pidfile = cfg.run_dir / "redis.pid"
        self.log_path = cfg.logs_dir / "redis.log"

    def pid(self) -> int | None:
        return running_pid(self.pidfile, "redis-server")

    def is_running(self) -> bool:
        return self.pid() is not None

    def command(self) -> list[str]:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        return [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.cfg.port("redis")),
            "--dir",
            str(self.data),
            "--appendonly",
            "yes",
            # the AOF is the durability we rely on; RDB snapshots would only add pauses
            "--save",
            "",
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.pidfile),
            "--logfile",
            str(self.log_path),
        ]

    def start(self) -> None:
        if not self.is_running():
            for d in (self.data, self.cfg.run_dir, self.cfg.logs_dir):
                d.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(
                self.command(),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            if proc.returncode != 0:
                raise StackError(f"redis-server failed to start: {proc.stdout}{proc.stderr}")
        # PING answers only once the AOF is loaded, so this also waits for the spool to be back
        if not wait_for(self.ping, timeout=30):
            raise StackError(f"redis does not answer PING; log:\n{log_tail(self.log_path)}")

    def stop(self, kill: bool = False) -> None:
        """SIGTERM (a clean shutdown), or SIGKILL when `kill` (a crash: the AOF is all that is left)."""
        pid = self.pid()
        if pid is not None:
            terminate(pid, kill=kill, timeout=30)
        self.pidfile.unlink(missing_ok=True)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.cfg.port("redis")), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False
