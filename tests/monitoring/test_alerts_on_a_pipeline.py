"""The alert rules on a real Prometheus scraping a running pipeline (the reference pool,
the proxy with mining miners, the writer), as the pools' PodMonitor labels them: every
rule evaluates without error, and every series they read is there."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.prometheus import PrometheusServer, static
from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from harness.writer import QUEUE, WriterProcess
from sharelog.pod_metrics import SIDECAR_UP

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "stratum-operator" / "files" / "alerts.yaml"
POD = {"namespace": "pools", "pod": "main-proxy-0"}


@pytest.fixture
def scraped(sim: SimLoop, tmp_path: Path) -> Iterator[PrometheusServer]:
    _, upstream = sim.pool()
    proxy = ProxyProcess(tmp_path / "pod", [upstream]).start()
    writer = WriterProcess(proxy.spool, f"sqlite:///{tmp_path / 'shares.db'}").start()
    fleet = sim.fleet(proxy.listen_port, miners=6, shares_per_s=30, duration=20)
    server = PrometheusServer(static([(f"127.0.0.1:{proxy.port}", {**POD, "container": "proxy"}),
                                      (f"127.0.0.1:{writer.port}", {**POD, "container": "writer"})]),
                              [str(RULES)])  # fmt: skip
    try:
        fleet.result(timeout=60)
        writer.wait_for(QUEUE, lambda v: v == 0, 60)
        time.sleep(3)  # the last scrapes
        yield server
    finally:
        server.stop()


def test_every_rule_evaluates_on_real_series(scraped: PrometheusServer) -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    loaded = {r["name"]: r for g in scraped.api("rules")["groups"] for r in g["rules"]}
    for rule in (r for g in groups for r in g["rules"]):
        scraped.query(rule["expr"])  # raises with Prometheus's own error
        assert loaded[rule["alert"]]["health"] == "ok", loaded[rule["alert"]]
        for name in set(re.findall(r"\b(stratum_[a-z_]+|up)\b", rule["expr"])):
            if name.startswith("stratum_operator") or name == SIDECAR_UP:
                continue  # the operator's own; the pod path's (test_pod_annotations.py)
            assert scraped.query(name), f"{rule['alert']} reads {name}: no such series scraped"
    # a healthy pipeline fires nothing
    firing = [a for a in scraped.api("alerts")["alerts"] if a["state"] == "firing"]
    assert firing == [], firing


DASHBOARDS = sorted((ROOT / "charts" / "stratum-operator" / "files" / "dashboards").glob("*.json"))
# the operator's own dashboard reads the operator, not a pipeline: test_operator_dashboard.py
PIPELINE_DASHBOARDS = [p for p in DASHBOARDS if p.stem != "operator"]


def test_every_dashboard_panel_is_complete() -> None:
    """No Grafana schema validator is to be had from a registry here, so each panel is
    checked for what Grafana needs: a Prometheus datasource, a query, a unit."""
    assert DASHBOARDS
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in board["panels"]:
            assert panel["datasource"]["type"] == "prometheus", panel["title"]
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])


def test_every_dashboard_query_returns_data_on_a_running_pipeline(
    scraped: PrometheusServer,
) -> None:
    for path in PIPELINE_DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                assert scraped.query(target["expr"]), f"{panel['title']}: {target['expr']}"
