"""Where job processes run, behind one interface: the worker leases a job, starts it on its
executor, polls it, stops it when cancelled. `LocalExecutor` runs a process per job on this machine
(with a warm spare); the Kubernetes executor (worker/kubernetes.py) runs a batch/v1 Job per attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tollgate.common.waits import timed

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Handle:
    job_id: str
    attempt: int
    ref: Any  # the executor's own: a process, a Kubernetes Job name


class Executor(Protocol):
    async def warm(self) -> None:
        """Prepares for the next start, if the executor can (called while a slot is free)."""
        ...

    async def start(self, job_id: str, attempt: int, resources: Mapping[str, object]) -> Handle: ...

    async def exit_code(self, handle: Handle) -> int | None:
        """None while the job process runs; its exit status once it ended."""
        ...

    async def stop(self, handle: Handle, grace_s: float) -> None:
        """Asks the process to stop (it settles what it trained), kills it after `grace_s`."""
        ...

    async def close(self) -> None: ...


class LocalExecutor:
    """A subprocess per job, `command` + --job-id/--attempt; with `warm_spare`, one process is kept
    started ahead (`command --wait`, its libraries imported) and handed the next job on stdin. The
    worker asks for the spare (`warm`) only while it has a free slot: importing torch takes a core
    for ~10 s, which would otherwise be taken from the job that just started."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], *, warm_spare: bool = True) -> None:
        self._command = list(command)
        self._env = dict(env)
        self._warm_spare = warm_spare
        self._spare: asyncio.subprocess.Process | None = None

    async def warm(self) -> None:
        if self._warm_spare and (self._spare is None or self._spare.returncode is not None):
            self._spare = await asyncio.create_subprocess_exec(
                *self._command, "--wait", stdin=asyncio.subprocess.PIPE, env=self._env
            )

    async def start(self, job_id: str, attempt: int, resources: Mapping[str, object]) -> Handle:
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None and spare.stdin is not None:
            spare.stdin.write(f"{job_id} {attempt}\n".encode())
            await spare.stdin.drain()
            spare.stdin.close()
            process = spare
        else:
            process = await asyncio.create_subprocess_exec(
                *self._command,
                "--job-id",
                job_id,
                "--attempt",
                str(attempt),
                stdin=asyncio.subprocess.DEVNULL,
                env=self._env,
            )
        return Handle(job_id, attempt, process)

    async def exit_code(self, handle: Handle) -> int | None:
        process: asyncio.subprocess.Process = handle.ref
        return process.returncode

    async def stop(self, handle: Handle, grace_s: float) -> None:
        process: asyncio.subprocess.Process = handle.ref
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await timed(process.wait(), grace_s)
        except TimeoutError:
            log.warning("job process ignored SIGTERM; killing it", extra={"job_id": handle.job_id})
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    async def close(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                spare.kill()
            await spare.wait()
