"""deploy/prometheus: the alerting rules parse (`promtool check rules`), behave as their unit tests say
(`promtool test rules`), each carries what an on-call engineer needs, and the Kubernetes copy
(PrometheusRule, with the PodMonitor in deploy/k8s/components/monitoring) agrees with them."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from kustomize_loader import build

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yaml"))
UNIT_TESTS = sorted((PROMETHEUS / "tests").glob("*.yaml"))
COMPONENT = ROOT / "deploy" / "k8s" / "components" / "monitoring"
OPERATIONS = ROOT / "docs" / "operations.md"
# the list: every kind of trouble has at least one alert
REQUIRED = {
    "TollgateTargetDown",
    "TollgateUsageEventsLost",
    "TollgateUsageEventsSpooling",
    "TollgateLedgerMismatch",
    "TollgateSettlementLag",
    "TollgateHighErrorRatio",
    "TollgateAlertDeliveriesFailing",
}


def promtool() -> str:
    found = shutil.which("promtool")
    assert found is not None, "promtool is not installed: run `make tools` (or .ci/run)"
    return found


def render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_rule", PROMETHEUS / "render_rule.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alerts() -> list[dict[str, Any]]:
    return [
        rule for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"] for rule in g["rules"]
    ]


def test_promtool_accepts_the_rule_files() -> None:
    assert RULE_FILES
    result = subprocess.run(
        [promtool(), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert UNIT_TESTS
    result = subprocess.run(
        [promtool(), "test", "rules", *map(str, UNIT_TESTS)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wrong_rule_fails_its_unit_tests(tmp_path: Path) -> None:
    """The unit tests can fail: a threshold moved (5000 → 50000) makes the lag case that fires wrong."""
    rules = tmp_path / "rules"
    tests = tmp_path / "tests"
    rules.mkdir()
    tests.mkdir()
    for path in RULE_FILES:
        text = path.read_text()
        (rules / path.name).write_text(
            text.replace("sum(billing_usage_consumer_lag) > 5000", "sum(billing_usage_consumer_lag) > 50000")
        )
    assert any("> 50000" in p.read_text() for p in rules.iterdir())
    for path in UNIT_TESTS:
        (tests / path.name).write_text(path.read_text())
    result = subprocess.run(
        [promtool(), "test", "rules", *(str(tests / p.name) for p in UNIT_TESTS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "TollgateSettlementLag" in result.stdout + result.stderr


def test_every_alert_has_for_severity_text_and_a_runbook_entry() -> None:
    anchors = {_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", OPERATIONS.read_text(), flags=re.MULTILINE)}
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        doc, anchor = annotations["runbook_url"].split("#")
        assert doc == "docs/operations.md" and anchor == name.lower(), name
        assert anchor in anchors, f"docs/operations.md has no section for {name}"


def test_every_alert_has_a_case_that_fires_and_one_that_does_not() -> None:
    fired: dict[str, int] = {}
    quiet: dict[str, int] = {}
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                into = fired if check.get("exp_alerts") else quiet
                into[check["alertname"]] = into.get(check["alertname"], 0) + 1
    names = {a["alert"] for a in alerts()}
    assert set(fired) == names and set(quiet) == names


def test_the_prometheus_rule_for_kubernetes_is_the_rule_files() -> None:
    rendered = render_module().prometheus_rule()
    shipped = yaml.safe_load((COMPONENT / "prometheus-rule.yaml").read_text())
    assert shipped == rendered, "run `uv run --frozen python deploy/prometheus/render_rule.py`"
    assert shipped["spec"]["groups"] == [
        g for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"]
    ]


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """base with the monitoring component, as an operator-run cluster's overlay would add it."""
    overlay = tmp_path_factory.mktemp("overlay")
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "tollgate",
                "resources": [os.path.relpath(ROOT / "deploy" / "k8s" / "base", overlay)],
                "components": [os.path.relpath(COMPONENT, overlay)],
            }
        )
    )
    return build(overlay)


def _of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_every_pod_with_a_metrics_port_is_scraped_by_a_pod_monitor(monitored: list[dict[str, Any]]) -> None:
    """kubernetes-validate knows no CRDs: the PodMonitor's shape is checked here."""
    monitors = _of_kind(monitored, "PodMonitor")
    assert monitors
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["metadata"]["namespace"] == "tollgate"
        assert set(monitor["spec"]) <= {"selector", "podMetricsEndpoints", "namespaceSelector", "jobLabel"}
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
            targets = {r["targetLabel"] for r in endpoint.get("relabelings", [])}
            assert "service" in targets  # the label the dashboards and alerts select by
    pods = [
        (d["metadata"]["name"], d["spec"]["template"])
        for d in _of_kind(monitored, "Deployment")
        if any(
            p.get("name") == "metrics"
            for c in d["spec"]["template"]["spec"]["containers"]
            for p in c.get("ports", [])
        )
    ]
    assert {name for name, _ in pods} == {
        "gateway", "auth", "billing", "billing-worker", "analytics", "training", "training-worker"
    }  # fmt: skip
    for name, template in pods:
        labels = template["metadata"]["labels"]
        assert any(
            m["spec"]["selector"]["matchLabels"].items() <= labels.items()
            and any(e["port"] == "metrics" for e in m["spec"]["podMetricsEndpoints"])
            for m in monitors
        ), name


def test_the_prometheus_rule_has_the_operator_shape(monitored: list[dict[str, Any]]) -> None:
    (rule,) = _of_kind(monitored, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["metadata"]["namespace"] == "tollgate"
    assert set(rule["spec"]) == {"groups"}
    for group in rule["spec"]["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["rules"]
        for entry in group["rules"]:
            assert set(entry) <= {"alert", "record", "expr", "for", "labels", "annotations"}
            assert isinstance(entry["expr"], str)


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")
