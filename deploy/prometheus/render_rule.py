"""Renders deploy/prometheus/rules/*.yaml as the PrometheusRule of deploy/k8s/components/monitoring.

One source of truth for the alerts: a plain Prometheus loads the rule files, the Prometheus Operator
the PrometheusRule this writes (its spec.groups are the rule files' groups, unchanged).
tests/deploy/test_prometheus_rules.py fails when the two disagree. Run after editing a rule:

    uv run --frozen python deploy/prometheus/render_rule.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules"
TARGET = HERE.parent / "k8s" / "components" / "monitoring" / "prometheus-rule.yaml"
HEADER = (
    "# GENERATED from deploy/prometheus/rules/*.yaml by deploy/prometheus/render_rule.py: edit the rules\n"
    "# there and re-run it (tests/deploy/test_prometheus_rules.py checks this copy agrees).\n"
)


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted(RULES.glob("*.yaml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


def prometheus_rule() -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "tollgate", "labels": {"app.kubernetes.io/part-of": "tollgate"}},
        "spec": {"groups": rule_groups()},
    }


def main() -> None:
    TARGET.write_text(HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=110))


if __name__ == "__main__":
    main()
