"""The alert rules, the scrape config and the dashboard read only series Parjanya serves, and the
seed's alerts fire on the series as the pools serve them (`promtool`, when it is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from parjanya import metrics

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "parjanya.json"
NAME = re.compile(r"\bparjanya_[a-z_]+\b")


def served_names() -> set[str]:
    """Every sample name the pools expose: counters' _total, histograms' _bucket/_count/_sum."""
    names = {
        metrics.QUEUE_DEPTH,
        metrics.QUEUE_OLDEST_AGE,
        metrics.DEAD_LETTER_DEPTH,
        metrics.BREAKER_STATE,
    }
    for value in vars(metrics).values():
        if isinstance(value, Counter):
            names.add(f"{value._name}_total")
        elif isinstance(value, Histogram):
            names |= {f"{value._name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        elif isinstance(value, Gauge):
            names.add(value._name)
    return names


def rule_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((PROMETHEUS / "alerts.yaml").read_text())["spec"]
    return spec


def rule_exprs() -> list[str]:
    return [rule["expr"] for group in rule_spec()["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for panel in panels for t in panel.get("targets", [])]


def test_every_series_an_alert_uses_is_served() -> None:
    used = {name for expr in rule_exprs() for name in NAME.findall(expr)}
    assert used, "no parjanya_* series in the rules"
    assert used - served_names() == set()


def test_the_seed_alerts_exist() -> None:
    alerts = {rule["alert"] for group in rule_spec()["groups"] for rule in group["rules"]}
    assert {
        "ParjanyaModelErrorRateHigh",
        "ParjanyaTaskErrorRateHigh",
        "ParjanyaModelLatencyHigh",
        "ParjanyaCostSpike",
        "ParjanyaDeadLetterGrowth",
    } <= alerts


def test_every_series_the_dashboard_and_the_rule_tests_use_is_served() -> None:
    tests = (PROMETHEUS / "alerts_test.yaml").read_text()
    used = {name for expr in dashboard_exprs() for name in NAME.findall(expr)}
    used |= set(NAME.findall(tests))
    assert len(dashboard_exprs()) >= 10
    assert used - served_names() == set()


def test_the_dashboard_has_the_panels_operators_look_for() -> None:
    titles = " | ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for wanted in ("by tier and status", "p50 / p95 / p99", "cost per hour, by tier", "queue depth",
                   "dead-letter", "breakers", "escalation"):  # fmt: skip
        assert wanted in titles, wanted


PROMTOOL = shutil.which("promtool")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules_and_the_scrape_config(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_spec()))
    shutil.copy(PROMETHEUS / "prometheus.yml", tmp_path / "prometheus.yml")
    for args in (["check", "rules", "rules.yml"], ["check", "config", "prometheus.yml"]):
        done = subprocess.run(
            [PROMTOOL, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
def test_the_seed_alerts_fire_on_series_shaped_as_served(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    spec = rule_spec()
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # the cases compare labels; the text may change
    (tmp_path / "rules_bare.yml").write_text(yaml.safe_dump(spec))
    shutil.copy(PROMETHEUS / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    done = subprocess.run(
        [PROMTOOL, "test", "rules", "alerts_test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
