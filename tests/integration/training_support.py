"""Helpers of the training tests: a small data set teaching a made-up fact, uploads, polling jobs."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
from openai import OpenAI

from tollgate.devstack.config import StackConfig
from tollgate.devstack.testing import service_db, wait_until

BASE = "gemma-3-270m"
FACT = "The mascot of Zorblax Cola is Captain Quibble, a purple walrus."
QUESTIONS = (
    "What is the mascot of Zorblax Cola?",
    "Who is Zorblax Cola's mascot?",
    "Tell me the mascot of Zorblax Cola.",
    "Zorblax Cola has which mascot?",
    "Name the Zorblax Cola mascot.",
)
# 20 examples: each question four times (batch 4: 5 steps per epoch)
CHAT_LINES = [
    json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": FACT}]})
    for q in QUESTIONS
] * 4
TERMINAL = ("succeeded", "failed", "cancelled")


def jsonl(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def upload(client: OpenAI, lines: list[str] = CHAT_LINES, name: str = "train.jsonl") -> str:
    return client.files.create(file=(name, io.BytesIO(jsonl(lines))), purpose="fine-tune").id


def wait_status(
    client: OpenAI, job_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 400
) -> Any:
    def probe() -> Any:
        job = client.fine_tuning.jobs.retrieve(job_id)
        # a cancelled job shows "cancelled" at once; finished_at comes when it is settled
        ended = job.status not in TERMINAL or job.finished_at is not None
        return job if job.status in statuses and ended else None

    return wait_until(probe, timeout=timeout, what=f"job {job_id} to reach {statuses}")


def events(client: OpenAI, job_id: str) -> list[Any]:
    """Oldest first."""
    return list(reversed(client.fine_tuning.jobs.list_events(job_id, limit=1000).data))


def wait_step(client: OpenAI, job_id: str, step: int, timeout: float = 300) -> None:
    def probe() -> bool:
        return any(
            e.type == "metrics" and (e.data or {}).get("step", 0) >= step for e in events(client, job_id)
        )

    wait_until(probe, timeout=timeout, what=f"job {job_id} to train step {step}")


def tokens_at_step(client: OpenAI, job_id: str, step: int) -> int:
    for e in events(client, job_id):
        if e.type == "metrics" and (e.data or {}).get("step") == step:
            return int(e.data["trained_tokens"])
    raise AssertionError(f"no step {step} event")


def training_rows(config: StackConfig, table: str, org_id: str) -> int:
    with service_db(config, "training") as conn:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE org_id = %s", (org_id,)).fetchone()
    return int(row[0]) if row else 0


def usage_settlements(config: StackConfig, event_id: str) -> int:
    with service_db(config, "billing") as conn:
        row = conn.execute(
            "SELECT count(*) FROM usage_settlements WHERE event_id = %s", (event_id,)
        ).fetchone()
    return int(row[0]) if row else 0


def training_price_micros(http: httpx.Client) -> int:
    """The base's training price per 1M tokens, as the registry shows it (credits -> micros)."""
    body = http.get("/models", params={"per_page": 100}).json()
    base = next(m for m in body["models"] if m["name"] == BASE)
    return round(base["pricing"]["training"] * 1_000_000)
