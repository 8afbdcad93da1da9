"""`make bench`: gateway overhead over calling the upstream simulator directly, and throughput.

Brings up the `bench` profile of the local stack (its own ports and data), registers a simulator
model, creates a well-funded key, then drives both endpoints with wrk over keep-alive connections:
- concurrency 1: p50 / p99 latency, direct to the simulator vs through the gateway (auth cache,
  credit hold over gRPC, usage event to Kafka all on); the difference is the gateway's overhead;
- concurrency 16: requests/s of the one gateway worker process;
- the same at concurrency 1 for a model whose provider is `anthropic` (the simulator's Messages
  dialect, called directly on /v1/messages for the baseline): what the translation adds over the
  OpenAI-compatible path is the difference between the two overheads;
- the same key with rate limits on (far above what the bench reaches) against none, off and on in
  turn on the same stack: latency at c=1, req/s and the gateway's CPU per request (read from
  /proc) at c=16.
Writes the numbers to stdout and bench/results.json; docs/benchmarks.md records them with context.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tollgate.devstack.config import StackConfig
from tollgate.devstack.stack import Stack
from tollgate.devstack.testing import register_model

DURATION_S = int(os.environ.get("BENCH_DURATION_S", "15"))
BODY = {"model": "sim-bench", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 8}
CLAUDE_BODY = {**BODY, "model": "sim-bench-claude"}
# the simulator's Anthropic dialect called directly: the same request in the Messages API's shape
DIRECT_CLAUDE_BODY = {"model": "claude-sim", "messages": BODY["messages"], "max_tokens": 8}
DIRECT_CLAUDE_HEADERS = {"x-api-key": "sk-ant-sim", "anthropic-version": "2023-06-01"}

_WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Content-Type"] = "application/json"
%s
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unparsable latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str,
    body: dict[str, object],
    *,
    connections: int,
    threads: int,
    key: str | None,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
    auth += "".join(f'\nwrk.headers["{name}"] = "{value}"' for name, value in (headers or {}).items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % (json.dumps(body), auth))
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{DURATION_S}s", "--latency", "-s", script.name, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    os.unlink(script.name)
    dist = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", out, re.M))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "p50_ms": _ms(dist["50"]),
        "p90_ms": _ms(dist["90"]),
        "p99_ms": _ms(dist["99"]),
        "rps": rps,
        "requests": total,
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def hold_stock(metrics_url: str) -> dict[str, float]:
    """The gateway's gateway_hold_stock_total counters by outcome (docs/billing.md, "Hold stock")."""
    text = httpx.get(metrics_url, timeout=10).text
    return {
        outcome: float(value)
        for outcome, value in re.findall(r'^gateway_hold_stock_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    }


def warm(gateway: str, key: str) -> None:
    print("warming up ...", flush=True)
    for _ in range(200):
        httpx.post(f"{gateway}/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"})


def hold_marks(metrics_url: str) -> dict[str, float]:
    """The gateway's gateway_hold_marks_total counters by outcome (sent / dropped)."""
    text = httpx.get(metrics_url, timeout=10).text
    return {
        outcome: float(value)
        for outcome, value in re.findall(r'^gateway_hold_marks_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    }


def anthropic_translation(
    admin: httpx.Client, gateway: str, sim: str, key: str, openai_overhead: dict[str, float]
) -> dict[str, object]:
    """The gateway's overhead at c=1 on a model whose provider speaks Anthropic's Messages API, over
    calling the simulator's /v1/messages directly, and what that adds to the OpenAI-compatible path's
    overhead (measured just before: same stack, same key)."""
    config = {"base_url": f"{sim}/v1", "model": "claude-sim", "api_key": "sk-ant-sim"}
    body = {"name": "sim-bench-claude", "provider": "anthropic", "config": json.dumps(config)}
    admin.post("/admin/model/save", json={**body, "price_in": 0.01, "price_out": 0.01}).raise_for_status()
    for _ in range(200):
        httpx.post(
            f"{gateway}/v1/chat/completions", json=CLAUDE_BODY, headers={"Authorization": f"Bearer {key}"}
        )
    direct = wrk(
        f"{sim}/v1/messages",
        DIRECT_CLAUDE_BODY,
        connections=1,
        threads=1,
        key=None,
        headers=DIRECT_CLAUDE_HEADERS,
    )
    through = wrk(f"{gateway}/v1/chat/completions", CLAUDE_BODY, connections=1, threads=1, key=key)
    overhead = {
        "p50_ms": round(through["p50_ms"] - direct["p50_ms"], 3),
        "p99_ms": round(through["p99_ms"] - direct["p99_ms"], 3),
    }
    return {
        "direct_c1": direct,
        "gateway_c1": through,
        "overhead_c1": overhead,
        "added_over_openai_p50_ms": round(overhead["p50_ms"] - openai_overhead["p50_ms"], 3),
    }


def process_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds (user + system) the process has used so far, read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    return read


def set_limits(admin: httpx.Client, key_id: int, on: bool) -> None:
    """Limits far above what the bench reaches (every request counted, none refused), or none."""
    settings = {"rpm": 1_000_000_000, "tpm": 1_000_000_000_000} if on else {"rpm": None, "tpm": None}
    admin.post("/admin/api-key/limits", json={"id": key_id, **settings}).raise_for_status()
    time.sleep(1.0)  # the key's cached principal is dropped (auth.keys.v1) and fetched again


def limits_on(
    admin: httpx.Client,
    gateway: str,
    key: str,
    key_id: int,
    before: dict[str, object],
    gateway_cpu: Callable[[], float] | None = None,
    rounds: int = 2,
) -> dict[str, object]:
    """The same key with rate limits on (docs/limits.md): limits far above what the bench reaches,
    so every request is counted (requests per minute and tokens per minute, leased from Redis) and
    none is refused, against the same key with none. On a shared VM latency and req/s drift by tens
    of percent over a bench run, so a limits-on run is never compared with the runs at the start of
    the bench: limits go off and on in turn on the same stack, `rounds` times, in ABBA order (off,
    on, then on, off) so that a steady drift weighs on both alike; each turn runs c=1 then c=16 and
    reads the gateway's CPU over the c=16 run. The numbers are the means of each side's runs."""
    set_limits(admin, key_id, True)
    answer = httpx.post(
        f"{gateway}/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
    )
    if "x-ratelimit-limit" not in answer.headers:
        raise RuntimeError("the bench key's limits did not reach the gateway")
    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        side: {"c1": [], "c16": []} for side in ("off", "on")
    }
    cpu_per_request: dict[str, list[float]] = {"off": [], "on": []}
    url = f"{gateway}/v1/chat/completions"
    for turn in range(rounds):
        for on in (False, True) if turn % 2 == 0 else (True, False):
            side = "on" if on else "off"
            set_limits(admin, key_id, on)
            warm(gateway, key)
            runs[side]["c1"].append(wrk(url, BODY, connections=1, threads=1, key=key))
            used = gateway_cpu() if gateway_cpu is not None else 0.0
            c16 = wrk(url, BODY, connections=16, threads=2, key=key)
            runs[side]["c16"].append(c16)
            if gateway_cpu is not None:
                used = gateway_cpu() - used
                cpu_per_request[side].append(round(used / max(c16["requests"], 1) * 1e6, 1))
    set_limits(admin, key_id, False)
    direct = before["direct_c1"]
    assert isinstance(direct, dict)

    def mean(side: str, concurrency: str, measure: str) -> float:
        values = [run[measure] for run in runs[side][concurrency]]
        return sum(values) / len(values)

    def overhead(side: str) -> dict[str, float]:
        return {
            "p50_ms": round(mean(side, "c1", "p50_ms") - direct["p50_ms"], 3),
            "p99_ms": round(mean(side, "c1", "p99_ms") - direct["p99_ms"], 3),
        }

    cpu_means = {k: sum(v) / len(v) for k, v in cpu_per_request.items() if v}
    return {
        "rounds": rounds,
        "runs": runs,
        "gateway_cpu_us_per_request_c16": cpu_per_request,
        "cpu_on_vs_off": round(cpu_means["on"] / cpu_means["off"], 3) if len(cpu_means) == 2 else None,
        "overhead_c1": overhead("on"),
        "overhead_c1_off": overhead("off"),
        "c16_rps": {side: round(mean(side, "c16", "rps"), 1) for side in ("off", "on")},
        "c16_vs_off": round(mean("on", "c16", "rps") / mean("off", "c16", "rps"), 3),
    }


def revocation_latency(admin: httpx.Client, gateway: str, samples: int = 20) -> dict[str, float]:
    """Seconds from an admin's key deletion to the gateway's first 401 for that key, whose principal
    the gateway had cached (30 s): the auth.keys.v1 invalidation path, end to end. Contract: < 1 s."""
    seen = []
    for i in range(samples):
        applied = admin.post(
            "/admin/api-key/apply", json={"name": f"bench-revoke-{i}-{time.time()}", "role": "user"}
        )
        applied.raise_for_status()
        key, key_id = applied.json()["api_key"], applied.json()["id"]
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(2):  # the second answer comes from the principal cache
            httpx.get(f"{gateway}/v1/models", headers=headers).raise_for_status()
        admin.post("/admin/api-key/delete", json={"id": key_id}).raise_for_status()
        deleted = time.perf_counter()
        while httpx.get(f"{gateway}/v1/models", headers=headers).status_code != 401:
            if time.perf_counter() - deleted > 30:
                raise RuntimeError("a revoked key was still accepted after 30 s")
            time.sleep(0.002)
        seen.append(time.perf_counter() - deleted)
    seen.sort()
    return {"samples": samples, "p50": round(seen[len(seen) // 2], 4), "max": round(seen[-1], 4)}


def main() -> int:
    if not shutil.which("wrk"):
        print("wrk is missing: `apt-get install -y wrk` (make bench does this)", file=sys.stderr)
        return 1
    stack = Stack(StackConfig.from_env(profile=os.environ.get("TOLLGATE_PROFILE", "test")))
    stack.up(local_model=False)
    cfg = stack.cfg
    gateway, sim = cfg.url("gateway"), cfg.url("upstream_sim")
    admin = httpx.Client(
        base_url=gateway, headers={"Authorization": f"Bearer {cfg.admin_api_key}"}, timeout=30
    )
    register_model(admin, "sim-bench", "sim-bench", sim, price_in=0.01, price_out=0.01)
    applied = admin.post("/admin/api-key/apply", json={"name": f"bench-{int(time.time())}", "role": "user"})
    applied.raise_for_status()
    key, key_id = applied.json()["api_key"], applied.json()["id"]
    admin.post("/admin/api-key/recharge", json={"api_key": key, "balance": 1_000_000}).raise_for_status()

    direct_body = {**BODY, "stream_options": {"include_usage": True}}
    warm(gateway, key)

    stock_before = hold_stock(cfg.metrics_url("gateway"))
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "duration_s": DURATION_S},
        "direct_c1": wrk(f"{sim}/v1/chat/completions", direct_body, connections=1, threads=1, key=None),
        "gateway_c1": wrk(f"{gateway}/v1/chat/completions", BODY, connections=1, threads=1, key=key),
        # how the c=1 requests got their credit hold: from the stock placed ahead, or by Reserve
        "hold_stock_c1": {
            k: v - stock_before.get(k, 0) for k, v in hold_stock(cfg.metrics_url("gateway")).items()
        },
        "direct_c16": wrk(f"{sim}/v1/chat/completions", direct_body, connections=16, threads=2, key=None),
        "gateway_c16": wrk(f"{gateway}/v1/chat/completions", BODY, connections=16, threads=2, key=key),
    }
    results["overhead_c1"] = {
        "p50_ms": round(results["gateway_c1"]["p50_ms"] - results["direct_c1"]["p50_ms"], 3),
        "p99_ms": round(results["gateway_c1"]["p99_ms"] - results["direct_c1"]["p99_ms"], 3),
    }
    results["hold_marks"] = hold_marks(cfg.metrics_url("gateway"))
    if os.environ.get("BENCH_ANTHROPIC", "1") == "1":
        results["anthropic"] = anthropic_translation(admin, gateway, sim, key, results["overhead_c1"])
    if os.environ.get("BENCH_LIMITS", "1") == "1":
        gateway_pid = next(c.pid for c in stack.status() if c.name == "gateway")
        cpu = process_cpu(gateway_pid) if gateway_pid is not None else None
        results["limits_on"] = limits_on(admin, gateway, key, key_id, results, cpu)
    if os.environ.get("BENCH_MARKS_AB", "1") == "1":
        # the same gateway without hold marks (GATEWAY_HOLD_MARKS=false), same stack, same run: what
        # marking every answered request's hold costs (docs/billing.md "Holds at answer time")
        stack.stop_service("gateway")
        stack.start_service("gateway", extra_env={"GATEWAY_HOLD_MARKS": "false"})
        warm(gateway, key)
        off_c1 = wrk(f"{gateway}/v1/chat/completions", BODY, connections=1, threads=1, key=key)
        off_c16 = wrk(f"{gateway}/v1/chat/completions", BODY, connections=16, threads=2, key=key)
        results["marks_off"] = {
            "gateway_c1": off_c1,
            "gateway_c16": off_c16,
            "overhead_c1": {
                "p50_ms": round(off_c1["p50_ms"] - results["direct_c1"]["p50_ms"], 3),
                "p99_ms": round(off_c1["p99_ms"] - results["direct_c1"]["p99_ms"], 3),
            },
        }
        # and with marks again after the restart (A/B/A): the first run pays for a cold stack, so
        # the marks' cost is read against the later of the two runs with marks as well
        stack.stop_service("gateway")
        stack.start_service("gateway")
        warm(gateway, key)
        again_c1 = wrk(f"{gateway}/v1/chat/completions", BODY, connections=1, threads=1, key=key)
        results["marks_on_again"] = {
            "gateway_c1": again_c1,
            "overhead_c1": {
                "p50_ms": round(again_c1["p50_ms"] - results["direct_c1"]["p50_ms"], 3),
                "p99_ms": round(again_c1["p99_ms"] - results["direct_c1"]["p99_ms"], 3),
            },
        }
    results["revocation_s"] = revocation_latency(admin, gateway)
    Path(cfg.root / "bench" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(
        f"\ngateway overhead at c=1: p50 {results['overhead_c1']['p50_ms']} ms (target <= 0.5), "
        f"p99 {results['overhead_c1']['p99_ms']} ms (target <= 4); gateway at c=16: "
        f"{results['gateway_c16']['rps']:.0f} req/s (target >= 2000 for one worker); c=1 holds from stock: "
        f"{results['hold_stock_c1'].get('hit', 0):.0f} of {results['gateway_c1']['requests']}"
    )
    if "marks_off" in results:
        off = results["marks_off"]
        print(
            f"without hold marks: p50 {off['overhead_c1']['p50_ms']} ms, "
            f"p99 {off['overhead_c1']['p99_ms']} ms, c=16 {off['gateway_c16']['rps']:.0f} req/s"
        )
        again = results["marks_on_again"]["overhead_c1"]
        print(f"with hold marks again, after the restart: p50 {again['p50_ms']} ms, p99 {again['p99_ms']} ms")
    if "anthropic" in results:
        claude = results["anthropic"]
        print(
            f"anthropic provider at c=1: overhead p50 {claude['overhead_c1']['p50_ms']} ms, "
            f"p99 {claude['overhead_c1']['p99_ms']} ms; over the OpenAI-compatible path: "
            f"{claude['added_over_openai_p50_ms']} ms p50 (target <= 0.2)"
        )
    if "limits_on" in results:
        lim = results["limits_on"]
        over, off = lim["overhead_c1"], lim["overhead_c1_off"]
        print(
            f"with rate limits on (means of {lim['rounds']} alternated off/on turns): c=1 overhead p50 "
            f"{over['p50_ms']} ms, p99 {over['p99_ms']} ms (off: {off['p50_ms']} / {off['p99_ms']} ms); c=16 "
            f"{lim['c16_rps']['on']:.0f} req/s against {lim['c16_rps']['off']:.0f} off "
            f"({lim['c16_vs_off']:.1%}, target >= 95%); gateway CPU per request at c=16 "
            f"{lim['gateway_cpu_us_per_request_c16']} us, on/off {lim['cpu_on_vs_off']}"
        )
    print(f"revocation (delete -> first 401): {results['revocation_s']} (contract < 1 s)")
    if os.environ.get("TOLLGATE_KEEP_STACK") != "1":
        stack.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
