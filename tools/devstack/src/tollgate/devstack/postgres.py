"""PostgreSQL 15 from the Debian packages: one cluster per profile under state_dir/postgres."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from tollgate.devstack.config import DB_SERVICES, StackConfig
from tollgate.devstack.procs import StackError, child_pids, log_tail, pid_alive, terminate, wait_for

PG_ROOT = Path("/usr/lib/postgresql")
PREFERRED_MAJOR = 15


def pg_bin_dir(root: Path = PG_ROOT) -> Path:
    """Debian's server binaries: version 15 when installed, else the newest major present."""
    majors = sorted(
        (int(d.name) for d in root.glob("*") if d.name.isdigit() and (d / "bin" / "initdb").exists()),
        reverse=True,
    )
    major = PREFERRED_MAJOR if PREFERRED_MAJOR in majors else (majors[0] if majors else PREFERRED_MAJOR)
    return root / str(major) / "bin"


def _as_postgres_user() -> list[str]:
    # initdb and pg_ctl refuse to run as root: drop to the `postgres` system user then
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Postgres:
    name = "postgres"

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.base = cfg.state_dir / "postgres"
        self.data = self.base / "data"
        self.socket_dir = self.base / "socket"
        self.log_path = cfg.logs_dir / "postgres.log"

    def _bin(self, tool: str) -> str:
        bin_dir = pg_bin_dir()
        path = bin_dir / tool
        if not path.exists():
            found = shutil.which(tool)
            if found is None:
                raise StackError(f"{tool} not in {bin_dir} or PATH; install Debian's postgresql package")
            return found
        return str(path)

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*_as_postgres_user(), *argv],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            # pg_ctl's postmaster must outlive us and `make`: its own session, not our process group
            start_new_session=True,
        )
        if check and proc.returncode != 0:
            raise StackError(
                f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}\n"
                f"{log_tail(self.log_path)}"
            )
        return proc

    def _prepare_dirs(self) -> None:
        for d in (self.base, self.socket_dir, self.cfg.logs_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.log_path.touch(exist_ok=True)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            for path in (self.base, self.socket_dir, self.log_path):
                os.chown(path, pg.pw_uid, pg.pw_gid)
            if self.data.exists():
                os.chown(self.data, pg.pw_uid, pg.pw_gid)

    def _init_once(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                "tollgate",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )

    def pid(self) -> int | None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid, "postgres") else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def _server_options(self) -> str:
        opts = [
            f"-p {self.cfg.port('postgres')}",
            f"-k {self.socket_dir}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=300",
        ]
        if self.cfg.tuned_for_tests:
            # test data is disposable: trade durability for speed
            opts += ["-c fsync=off", "-c full_page_writes=off"]
            if not self.cfg.crash_safe_commits:
                opts.append("-c synchronous_commit=off")
        return " ".join(opts)

    def start(self) -> None:
        self._prepare_dirs()
        self._init_once()
        if not self.is_running():
            self._run(
                [
                    self._bin("pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_path),
                    "-o",
                    self._server_options(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            )
        if not wait_for(self._accepts_connections, timeout=60):
            raise StackError(f"postgres does not accept connections; log:\n{log_tail(self.log_path)}")
        self.ensure_databases()

    def stop(self, kill: bool = False) -> None:
        pid = self.pid()
        if pid is None:
            return
        if kill:
            # a crash, as an OOM kill of the container: every server process SIGKILLed at once
            # (the postmaster first, so it cannot restart its children); the next start runs crash
            # recovery. The lock file goes too, as with a restarted container: a killed postmaster
            # nobody reaps yet would still look alive to the next one.
            children = child_pids(pid)
            for victim in [pid, *children]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
            for victim in [pid, *children]:
                terminate(victim, kill=True)
            (self.data / "postmaster.pid").unlink(missing_ok=True)
            for lock in self.socket_dir.glob(".s.PGSQL.*"):
                lock.unlink(missing_ok=True)
            return
        # fast: roll back open transactions and disconnect clients, like a real outage would
        self._run([self._bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"])

    def _conninfo(self, dbname: str) -> str:
        port = self.cfg.port("postgres")
        return f"host=127.0.0.1 port={port} user=tollgate dbname={dbname} connect_timeout=3"

    def _accepts_connections(self) -> bool:
        try:
            with psycopg.connect(self._conninfo("postgres")) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def ensure_databases(self) -> None:
        # CREATE DATABASE cannot run inside a transaction block
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}
            for svc in DB_SERVICES:
                name = f"tollgate_{svc}"
                if name not in existing:
                    conn.execute(f'CREATE DATABASE "{name}" OWNER tollgate')
