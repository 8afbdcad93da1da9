"""OS process plumbing: detached spawns, pidfiles, liveness, graceful stop, readiness polling."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx


class StackError(RuntimeError):
    """A component of the local stack failed to start or stop; the message carries its log tail."""


def log_tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 16384))
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _live_threads(pid: int) -> int:
    live = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            live += 1
    return live


def pid_alive(pid: int, marker: str | None = None) -> bool:
    """True if `pid` runs (not a zombie) and, when given, its command line contains `marker`.

    The marker guards against a stale pidfile whose pid was reused by an unrelated process.
    """
    # reap our own exited children first, or they linger as zombies that os.kill still "finds"
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        # A multi-threaded process's leader shows Z while its other threads still exit and still
        # hold its sockets: dead only when no thread is left, so ports are free once we say so.
        if stat.rsplit(")", 1)[1].split()[0] == "Z" and _live_threads(pid) == 0:
            return False
    except (OSError, IndexError):
        return False
    return marker is None or marker in _cmdline(pid)


def running_pid(pidfile: Path, marker: str | None = None) -> int | None:
    pid = read_pid(pidfile)
    if pid is not None and pid_alive(pid, marker):
        return pid
    return None


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    pidfile: Path | None,
    cwd: Path,
) -> int:
    """Start `argv` in its own session (so `make` exiting or Ctrl-C in a shell never kills it),
    stdout+stderr appended to `log_path`, its pid written to `pidfile`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    if pidfile is not None:
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(int(entry.name))
    return children


def terminate(pid: int, *, kill: bool = False, timeout: float = 30.0) -> None:
    """SIGKILL at once when `kill`, else SIGTERM, wait up to `timeout`, then SIGKILL."""
    sig = signal.SIGKILL if kill else signal.SIGTERM
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    if wait_for(lambda: not pid_alive(pid), timeout=timeout if not kill else 10.0, interval=0.05):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not wait_for(lambda: not pid_alive(pid), timeout=10.0, interval=0.05):
        raise StackError(f"process {pid} survived SIGKILL")


def wait_for(check: Callable[[], bool], *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def wait_http(
    url: str,
    *,
    name: str,
    pid: int,
    log_path: Path,
    timeout: float = 60.0,
) -> None:
    """Poll `url` until 200; fail fast (with the log tail) if the process dies meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_ok(url):
            return
        if not pid_alive(pid):
            raise StackError(f"{name} exited before {url} answered; last log lines:\n{log_tail(log_path)}")
        time.sleep(0.2)
    raise StackError(f"{name} not healthy at {url} after {timeout:.0f}s; log:\n{log_tail(log_path)}")
