"""deploy/grafana: provisioning and the overview dashboard are well formed and use documented metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql_check import base_metric, check_balanced, metric_names

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "tollgate-overview.json"


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # panels nested in collapsed rows
    return out


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p.get("targets", [])]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def datasource_uid() -> str:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    (datasource,) = provisioned["datasources"]
    assert datasource["type"] == "prometheus"
    return str(datasource["uid"])


@pytest.fixture(scope="module")
def documented_metrics() -> set[str]:
    readme = (GRAFANA / "README.md").read_text()
    return set(re.findall(r"^\| `([a-z_:][a-z0-9_:]*)` \|", readme, flags=re.MULTILINE))


def test_dashboard_provider_points_at_a_folder_and_the_dashboard_has_an_identity(
    dashboard: dict[str, Any],
) -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "tollgate.yaml").read_text())
    (entry,) = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"].startswith("/")
    assert dashboard["uid"] == "tollgate-overview"
    assert dashboard["title"] and isinstance(dashboard["schemaVersion"], int)


def test_panels_have_unique_ids_targets_and_grid_positions(dashboard: dict[str, Any]) -> None:
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_every_panel_and_target_uses_the_provisioned_datasource(
    dashboard: dict[str, Any], datasource_uid: str
) -> None:
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource_uid, panel["title"]


def test_required_views_are_present(dashboard: dict[str, Any]) -> None:
    exprs = "\n".join(_exprs(dashboard))
    assert re.search(r"sum by \(status\) \(rate\(http_requests_total\{[^}]*service=\"gateway\"", exprs)
    assert "histogram_quantile(0.5," in exprs and "histogram_quantile(0.99," in exprs
    assert "http_request_duration_seconds_bucket" in exprs
    for metric in (
        "billing_holds_refused_total",
        "billing_usage_settled_total",
        "billing_usage_duplicates_total",
        "gateway_usage_events_spooled_total",
    ):
        assert metric in exprs, metric


def test_every_expression_is_balanced_and_uses_only_documented_metrics(
    dashboard: dict[str, Any], documented_metrics: set[str]
) -> None:
    used: set[str] = set()
    for expr in _exprs(dashboard):
        check_balanced(expr)
        names = metric_names(expr)
        assert names, expr
        used |= {base_metric(n) for n in names}
    assert used - documented_metrics == set()


def test_documented_metrics_exist_in_the_source(documented_metrics: set[str]) -> None:
    """Catches a rename on either side: the contract names must be registered by some service."""
    sources = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/common/src/tollgate/common/*.py")]
    text = "\n".join(p.read_text() for p in sources)
    missing = sorted(m for m in documented_metrics if f'"{m}"' not in text)
    assert missing == []


def test_checker_rejects_broken_expressions_and_finds_metric_names() -> None:
    with pytest.raises(ValueError):
        check_balanced('sum(rate(x_total{a="b"}[5m])')
    with pytest.raises(ValueError):
        check_balanced('rate(x_total{a="b]}[5m]))')
    expr = 'histogram_quantile(0.99, sum by (le, provider) (rate(a_seconds_bucket{route!~"/x|/y"}[5m]))) / b'
    assert metric_names(expr) == {"a_seconds_bucket", "b"}


def test_promtool_parses_every_expression(dashboard: dict[str, Any], tmp_path: Path) -> None:
    # promtool comes with Debian's `prometheus` package, which provisioning (.ci/run, make tools) installs
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool is not installed: run `make tools` (or .ci/run)"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"tollgate:dashboard_expr_{i}", "expr": _grafana_vars(e)}
                    for i, e in enumerate(_exprs(dashboard))
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _grafana_vars(expr: str) -> str:
    return expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m")
