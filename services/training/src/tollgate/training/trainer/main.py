"""`tollgate-training-job`: the process that trains one job. Started with --job-id/--attempt, or
--wait to start ahead of time (its heavy imports done) and read "<job id> <attempt>" from stdin:
the local executor keeps one such warm process so a job's first step comes seconds after its lease.
It dies with the worker that started it (Linux parent-death signal), so a killed worker never
leaves a trainer behind that would race the next lease."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import sys

from tollgate.common.logging import configure_logging
from tollgate.common.telemetry import configure_tracing
from tollgate.training.config import TrainingSettings

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
# One job writes its steps from one thread: a connection, and one spare for the progress writer.
# deploy/k8s counts TRAINING_MAX_CONCURRENT_JOBS of these per worker in its max_connections budget.
JOB_DB_POOL_SIZE = 1
JOB_DB_MAX_OVERFLOW = 1


def die_with_parent() -> None:
    if not sys.platform.startswith("linux") or os.environ.get("TRAINING_JOB_DETACHED") == "1":
        return
    parent = os.getppid()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the call took effect
        os._exit(1)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tollgate-training-job")
    parser.add_argument("--job-id")
    parser.add_argument("--attempt", type=int)
    parser.add_argument("--wait", action="store_true", help="read '<job id> <attempt>' from stdin")
    args = parser.parse_args(argv)
    if not args.wait and (not args.job_id or not args.attempt):
        parser.error("--job-id and --attempt, or --wait")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    die_with_parent()
    settings = TrainingSettings()
    configure_logging("training-job", settings.log_level)
    configure_tracing(
        "training-job", console=settings.otel_exporter_console, sample_ratio=settings.otel_sample_ratio
    )
    # the heavy imports (torch, transformers, peft) happen here, before a job is known
    from sqlalchemy import create_engine

    from tollgate.training.trainer.run import run_job
    from tollgate.training.trainer.store import JobStore

    job_id, attempt = args.job_id, args.attempt
    if args.wait:
        line = sys.stdin.readline().split()
        if len(line) != 2:
            return 0  # the worker closed us unused
        job_id, attempt = line[0], int(line[1])
    engine = create_engine(
        settings.database_url,
        pool_size=JOB_DB_POOL_SIZE,
        max_overflow=JOB_DB_MAX_OVERFLOW,
        pool_pre_ping=True,
    )
    try:
        outcome = run_job(settings, JobStore(engine, job_id, attempt))
    finally:
        engine.dispose()
    log.info("job process done", extra={"job_id": job_id, "attempt": attempt, "outcome": outcome})
    return 0


def cli() -> None:
    sys.exit(main())
