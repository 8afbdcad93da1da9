"""A real Prometheus (Debian's /usr/bin/prometheus) scraping a local stack, and the queries of the
Grafana dashboards made concrete, for tests/integration/test_prometheus_scrape.py."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tollgate.devstack.config import METRICS_PORT_NAME, StackConfig

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yaml"))


def service_label(process: str) -> str:
    """The `service` label of a process, as Kubernetes' app.kubernetes.io/name spells it."""
    return process.replace("_", "-")


def scrape_config(config: StackConfig) -> dict[str, Any]:
    """Static targets: every process's metrics port, labelled as the PodMonitor labels pods."""
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [
            {
                "job_name": "tollgate",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{config.port(port_name)}"],
                        "labels": {"service": service_label(process)},
                    }
                    for process, port_name in METRICS_PORT_NAME.items()
                ],
            }
        ],
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Prometheus:
    url: str
    started: float  # time.time() when it came up: query windows start there

    def query(self, expr: str) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        assert resp.status_code == 200, (expr, resp.text)
        body = resp.json()
        assert body["status"] == "success", (expr, body)
        return list(body["data"]["result"])

    def window(self) -> str:
        """A range covering everything this Prometheus scraped (for $__rate_interval and $__range)."""
        return f"{int(time.time() - self.started) + 5}s"

    def scraped_all_since(self, moment: float, targets: int) -> bool:
        """Every one of `targets` answered a scrape that started after `moment` (time.time())."""
        up = self.query("up")
        started = self.query("timestamp(up)")  # a sample's timestamp is its scrape's start
        return (
            len(up) == len(started) == targets
            and all(r["value"][1] == "1" for r in up)
            and all(float(r["value"][1]) > moment for r in started)
        )

    def rules(self) -> list[dict[str, Any]]:
        resp = httpx.get(f"{self.url}/api/v1/rules", timeout=10)
        assert resp.status_code == 200, resp.text
        return [rule for group in resp.json()["data"]["groups"] for rule in group["rules"]]


@contextmanager
def running_prometheus(config: StackConfig, workdir: Path) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(binary).exists(), "prometheus is not installed: run `make tools` (or .ci/run)"
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(scrape_config(config)))
    port = _free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (workdir / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.2)
        yield Prometheus(url, time.time())
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str


def panel_queries() -> list[PanelQuery]:
    """Every target of every panel (rows' nested panels included) of every provisioned dashboard."""
    out = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        panels = [p for top in dashboard["panels"] for p in (top, *top.get("panels", []))]
        for panel in panels:
            for target in panel.get("targets", []):
                out.append(PanelQuery(path.name, panel["title"], target["refId"], target["expr"]))
    return out


def concrete(expr: str, window: str) -> str:
    """Grafana's variables replaced by values Prometheus accepts; a template variable the dashboards
    gained since (`$name`) is left in and fails the query loudly rather than being guessed."""
    for variable in ("$__rate_interval", "$__range", "$__interval"):
        expr = expr.replace(variable, window if variable != "$__interval" else "1s")
    return expr
