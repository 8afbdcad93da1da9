"""`make bench`, training part: the throughput our orchestration leaves and how soon a job starts.

Brings up the stack with the local model (the `test` profile unless TOLLGATE_PROFILE says otherwise),
restarts the training API with TRAINING_MAX_SEQ_LEN=256, then, with LoRA r=16 on every linear layer
of Gemma 3 270M, batch 4, sequences of 256 tokens, on whatever device torch finds:

1. a plain transformers `Trainer` loop over the same examples, in this process (first and last);
2. our LoRA loop alone (tollgate.training.trainer.loop, no database, no events), in this process;
3. (between 1 and 2, and again after 2) the same training as a real job: POST /training/jobs
   through the gateway, leased by the worker, run in its job process with a database write, an
   event and a Kafka record per step and a checkpoint half-way; its tokens/s come from the step
   events' timestamps in the training database.

Tokens/s are measured from the end of step 1 to the end of the last step (step 1 pays for warm-up).
Then three small jobs measure "job accepted -> first training step" with the base prepared.
Writes bench/training_results.json; docs/benchmarks.md records the numbers with context.
"""

from __future__ import annotations

import io
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import torch
from openai import OpenAI
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

from tollgate.devstack.config import StackConfig
from tollgate.devstack.local_model import MODEL_NAME, assemble_gguf
from tollgate.devstack.stack import Stack
from tollgate.training.examples import parse_jsonl
from tollgate.training.trainer.base_cache import prepare_base
from tollgate.training.trainer.data import collate, featurize
from tollgate.training.trainer.loop import LoopSettings, LoraLoop, StepReport
from tollgate.training.trainer.run import LORA_TARGETS

STEPS = int(os.environ.get("BENCH_TRAIN_STEPS", "10"))
BATCH, SEQ, RANK, ALPHA, LR = 4, 256, 16, 32, 1e-4
RESULTS = Path(__file__).with_name("training_results.json")
WORDS = [
    *("river", "stone", "market", "lantern", "copper", "orchard", "harbor", "meadow", "signal", "engine"),
    *("garden", "winter", "summer", "bridge", "canvas", "thunder", "velvet", "compass", "anchor", "feather"),
    *("silver", "quiet", "rapid", "golden", "hollow", "ember", "violet", "marble", "cedar", "falcon"),
]


def examples(n: int, seed: int = 3) -> list[str]:
    """n chat examples of well over 256 tokens (truncated to 256 when trained)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        prompt = " ".join(rng.choice(WORDS) for _ in range(60))
        answer = " ".join(rng.choice(WORDS) for _ in range(300))
        messages = [
            {"role": "user", "content": f"Continue: {prompt}"},
            {"role": "assistant", "content": answer},
        ]
        lines.append(json.dumps({"messages": messages}))
    return lines


def rate(times: list[float], tokens: list[int]) -> float:
    """Tokens/s from the end of step 1 to the end of the last step."""
    return (tokens[-1] - tokens[0]) / (times[-1] - times[0])


def lora_model(base_dir: Path) -> Any:
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    config = LoraConfig(
        r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, config)


def bench_trainer(base_dir: Path, features: list[Any], pad_id: int) -> dict[str, float]:
    times: list[float] = []
    tokens: list[int] = []
    per_step = sum(len(f.input_ids) for f in features[:BATCH])  # every example is SEQ tokens long

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            times.append(time.perf_counter())
            tokens.append(state.global_step * per_step)

    rows = [{"input_ids": f.input_ids, "labels": f.labels} for f in features]

    def collator(batch: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        from tollgate.training.trainer.data import Feature

        return collate([Feature(r["input_ids"], r["labels"]) for r in batch], pad_id)

    args = TrainingArguments(
        output_dir=str(Path("/tmp") / "tollgate-bench-trainer"),
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
        learning_rate=LR,
        lr_scheduler_type="linear",
        weight_decay=0.0,
        max_grad_norm=1.0,
        # transformers' default with torch >= 2.8, named so the baseline cannot drift from the
        # loop's optimiser (trainer/loop.py `adamw`) with a transformers upgrade
        optim="adamw_torch_fused",
        logging_strategy="no",
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        seed=7,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(
        model=lora_model(base_dir), args=args, train_dataset=rows, data_collator=collator, callbacks=[Clock()]
    )
    trainer.train()
    return {"steps": len(times), "tokens_per_s": rate(times, tokens)}


class NoReport:
    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens: list[int] = []

    def step(self, report: StepReport) -> bool:
        self.times.append(time.perf_counter())
        self.tokens.append(report.trained_tokens)
        return True

    def checkpoint(self, *args: Any) -> None:
        return None

    def epoch_end(self, *args: Any) -> None:
        return None


def bench_loop(base_dir: Path, features: list[Any], pad_id: int) -> dict[str, float]:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    loop = LoraLoop(
        lora_model(base_dir).to(device),
        LoopSettings(epochs=1, batch_size=BATCH, learning_rate=LR, seed=7),
        features,
        pad_id,
        device,
    )
    report = NoReport()
    loop.run(report)
    return {"steps": len(report.times), "tokens_per_s": rate(report.times, report.tokens)}


def training_db(cfg: StackConfig) -> psycopg.Connection[Any]:
    return psycopg.connect(
        cfg.database_url("training").replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    )


def step_events(cfg: StackConfig, job_id: str) -> list[tuple[float, int, float]]:
    """(when the step ended, tokens trained so far, seconds the step computed). A step event's
    created_at is the step's end as the job process saw it, whenever its progress writer wrote it."""
    with training_db(cfg) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM created_at), (data->>'trained_tokens')::bigint,"
            " (data->>'step_seconds')::float8"
            " FROM training_job_events WHERE job_id = %s AND type = 'metrics' AND data ? 'step' ORDER BY id",
            (job_id,),
        ).fetchall()
    return [(float(t), int(n), float(s)) for t, n, s in rows]


def wait_job(client: OpenAI, job_id: str, timeout: float = 3600, poll_s: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ("succeeded", "failed", "cancelled") and job.finished_at:
            return job
        time.sleep(poll_s)  # the bench's own polling is load on the same two cores: keep it rare
    raise TimeoutError(job_id)


def bench_job(cfg: StackConfig, http: httpx.Client, client: OpenAI, lines: list[str]) -> dict[str, float]:
    file_id = client.files.create(
        file=("bench.jsonl", io.BytesIO(("\n".join(lines) + "\n").encode())), purpose="fine-tune"
    ).id
    config = {"batch_size": BATCH, "learning_rate": LR, "num_epochs": 1, "save_steps": max(STEPS // 2, 1)}
    job = http.post(
        "/training/jobs", json={"model_id": MODEL_NAME, "dataset_path": file_id, "config": config}
    ).json()
    done = wait_job(client, job["id"])
    assert done.status == "succeeded", done.error
    events = step_events(cfg, job["id"])
    with training_db(cfg) as conn:  # the job's torch threads, to compare with this process's
        started = conn.execute(
            "SELECT data->>'threads' FROM training_job_events WHERE job_id = %s"
            " AND message = 'Fine-tuning job started'",
            (job["id"],),
        ).fetchone()
    threads = started[0] if started else None
    wall = events[-1][0] - events[0][0]
    computing = sum(seconds for _, _, seconds in events[1:])
    return {
        "steps": len(events),
        "tokens_per_s": rate([t for t, _, _ in events], [n for _, n, _ in events]),
        # within the same run, so immune to other load on the machine: the share of wall time spent
        # outside the training steps (database writes, events, the checkpoint, the lease)
        "orchestration_share": round(1 - computing / wall, 5),
        "torch_threads": int(threads) if threads is not None else None,
    }


def _first(condition: str) -> str:
    where = f"job_id = j.id AND {condition}"
    return f"(SELECT extract(epoch FROM min(created_at)) FROM training_job_events WHERE {where})"


LATENCY_SQL = (
    "SELECT extract(epoch FROM j.created_at), "
    + ", ".join(
        _first(c)
        for c in (
            "message LIKE 'Files validated%%'",
            "message = 'Fine-tuning job started'",
            "type = 'metrics'",
        )
    )
    + " FROM training_jobs j WHERE j.id = %s"
)


def first_step_latency(cfg: StackConfig, client: OpenAI, runs: int = 3) -> list[dict[str, float]]:
    lines = [
        json.dumps(
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
        )
    ] * BATCH
    out = []
    for _ in range(runs):
        file_id = client.files.create(
            file=("tiny.jsonl", io.BytesIO(("\n".join(lines) + "\n").encode())), purpose="fine-tune"
        ).id
        job = client.fine_tuning.jobs.create(
            model=MODEL_NAME, training_file=file_id, hyperparameters={"n_epochs": 1}
        )
        wait_job(client, job.id, poll_s=1.0)
        with training_db(cfg) as conn:
            created, leased, started, first = conn.execute(LATENCY_SQL, (job.id,)).fetchone()
        out.append(
            {
                "accepted_to_lease_s": round(float(leased) - float(created), 3),
                "lease_to_started_s": round(float(started) - float(leased), 3),
                "started_to_first_step_s": round(float(first) - float(started), 3),
                "accepted_to_first_step_s": round(float(first) - float(created), 3),
            }
        )
    return out


def main() -> int:
    cfg = StackConfig.from_env(profile=os.environ.get("TOLLGATE_PROFILE", "test"))
    stack = Stack(cfg)
    stack.up(local_model=True)
    stack.stop_service("training")
    stack.start_service("training", extra_env={"TRAINING_MAX_SEQ_LEN": str(SEQ)})
    admin = httpx.Client(
        base_url=cfg.url("gateway"), headers={"Authorization": f"Bearer {cfg.admin_api_key}"}, timeout=60
    )
    key = admin.post(
        "/admin/api-key/apply", json={"name": "bench-train", "role": "user", "email": ""}
    ).json()["api_key"]
    admin.post("/admin/api-key/recharge", json={"api_key": key, "balance": 1000})
    client = OpenAI(base_url=cfg.url("gateway") + "/v1", api_key=key, max_retries=0)
    http = httpx.Client(base_url=cfg.url("gateway"), headers={"Authorization": f"Bearer {key}"}, timeout=60)

    base_dir = prepare_base(
        Path(os.environ.get("TRAINING_BASE_CACHE_DIR", cfg.models_dir / "bases")),
        MODEL_NAME,
        assemble_gguf(cfg.models_dir),
    )
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    lines = examples(BATCH * STEPS)
    parsed, _ = parse_jsonl(("\n".join(lines) + "\n").encode(), max_lines=10_000)
    features = featurize(parsed, tokenizer, SEQ)
    assert all(len(f.input_ids) == SEQ for f in features)
    pad_id = tokenizer.pad_token_id or 0
    torch.manual_seed(0)

    results: dict[str, Any] = {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "settings": {"lora_r": RANK, "batch": BATCH, "seq": SEQ, "steps": STEPS},
    }
    # interleaved (Trainer, job, plain loop, job again, Trainer again): whatever else loads the two
    # cores (the host included) drifts over minutes, and a fixed order would charge that drift to one
    # side; the two jobs are averaged, and so are the two Trainer runs around them
    results["hf_trainer"] = bench_trainer(base_dir, features, pad_id)
    print("transformers Trainer:", results["hf_trainer"], flush=True)
    results["job"] = bench_job(cfg, http, client, lines)
    print("orchestrated job:", results["job"], flush=True)
    results["plain_loop"] = bench_loop(base_dir, features, pad_id)
    print("plain loop:", results["plain_loop"], flush=True)
    results["job_again"] = bench_job(cfg, http, client, lines)
    print("orchestrated job, again:", results["job_again"], flush=True)
    results["hf_trainer_again"] = bench_trainer(base_dir, features, pad_id)
    print("transformers Trainer, again:", results["hf_trainer_again"], flush=True)
    job = (results["job"]["tokens_per_s"] + results["job_again"]["tokens_per_s"]) / 2
    trainer = (results["hf_trainer"]["tokens_per_s"] + results["hf_trainer_again"]["tokens_per_s"]) / 2
    results["job_tokens_per_s_mean"] = round(job, 2)
    results["trainer_tokens_per_s_mean"] = round(trainer, 2)
    results["job_vs_trainer"] = round(job / trainer, 4)
    results["job_vs_plain_loop"] = round(job / results["plain_loop"]["tokens_per_s"], 4)
    results["first_step"] = first_step_latency(cfg, client)
    print("accepted -> first step:", results["first_step"], flush=True)
    results["first_step_median_s"] = statistics.median(
        r["accepted_to_first_step_s"] for r in results["first_step"]
    )
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    stack.stop_service("training")
    stack.start_service("training")
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
