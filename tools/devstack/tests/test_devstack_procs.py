"""Process plumbing on real (tiny) child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tollgate.devstack.procs import (
    StackError,
    log_tail,
    pid_alive,
    read_pid,
    running_pid,
    spawn,
    terminate,
    wait_http,
)


def test_spawn_detaches_logs_and_writes_pidfile(tmp_path: Path) -> None:
    log, pidfile = tmp_path / "logs" / "x.log", tmp_path / "run" / "x.pid"
    code = "import os,sys,time; print('sid', os.getsid(0) == os.getpid(), flush=True); time.sleep(30)"
    pid = spawn([sys.executable, "-c", code], env=os.environ, log_path=log, pidfile=pidfile, cwd=tmp_path)
    try:
        assert read_pid(pidfile) == pid
        # seen once (CI saw a loaded machine answer None for a moment): the pid is ours, by its cmdline
        deadline = time.monotonic() + 10
        while running_pid(pidfile, "time.sleep") != pid and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running_pid(pidfile, "time.sleep") == pid
        assert running_pid(pidfile, "no-such-marker") is None  # a reused pid is not ours
        deadline = time.monotonic() + 10
        while "sid" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "sid True" in log.read_text()  # its own session: survives the caller's Ctrl-C
    finally:
        terminate(pid, timeout=5)
    assert not pid_alive(pid)


def test_exited_child_is_not_alive_even_unreaped(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.5)  # exited, but a zombie until someone waits
    assert not pid_alive(proc.pid)


def test_terminate_escalates_to_sigkill(tmp_path: Path) -> None:
    code = (
        "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    started = time.monotonic()
    terminate(proc.pid, timeout=0.5)
    assert not pid_alive(proc.pid)
    assert time.monotonic() - started < 5


def test_missing_or_garbage_pidfile(tmp_path: Path) -> None:
    assert read_pid(tmp_path / "none.pid") is None
    (tmp_path / "bad.pid").write_text("nope")
    assert running_pid(tmp_path / "bad.pid") is None


def test_log_tail(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(path, 3) == "line 97\nline 98\nline 99"
    assert "no log" in log_tail(tmp_path / "missing.log")


def test_wait_http_reports_a_dead_process_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    pid = spawn(
        [sys.executable, "-c", "import sys; print('boom: no module'); sys.exit(3)"],
        env=os.environ,
        log_path=log,
        pidfile=None,
        cwd=tmp_path,
    )
    with pytest.raises(StackError, match="boom: no module"):
        wait_http("http://127.0.0.1:9/healthz", name="svc", pid=pid, log_path=log, timeout=10)
