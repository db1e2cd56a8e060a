"""The operator's dashboard on a real Prometheus scraping the real operator, at work on
the real control plane: a pool made Ready, its writers told a worker count, its claims
counted. Every panel's query returns data, and the operator's series the alerts read
are there."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from harness.kubernetes import ControlPlane
from harness.operator import OperatorProcess
from harness.prometheus import PrometheusServer, static
from harness.stratum_pools import ready_pool

ROOT = Path(__file__).resolve().parents[2]
BOARD = ROOT / "charts" / "stratum-operator" / "files" / "dashboards" / "operator.json"


def test_every_operator_panel_returns_data(
    installed_chart: ControlPlane, ns: str, operator: OperatorProcess
) -> None:
    cp = installed_chart
    ready_pool(cp, "watched", ns, proxy={"replicas": 1})
    server = PrometheusServer(static([(f"127.0.0.1:{operator.port}", {"job": "operator"})]), [])
    try:
        exprs = [(panel["title"], t["expr"]) for panel in json.loads(BOARD.read_text())["panels"]
                 for t in panel["targets"]]  # fmt: skip
        for title, expr in exprs:
            cp.wait(f"{title}: {expr}", functools.partial(server.query, expr), 30)
        told = server.query(f'stratum_operator_writer_workers{{namespace="{ns}",pool="watched"}}')
        assert [s["value"][1] for s in told] == ["1"]  # minWorkers: the pods can't be read
        states = server.query(f'stratum_operator_spool_claims{{namespace="{ns}",pool="watched"}}')
        assert {s["metric"]["state"]: s["value"][1] for s in states} == {
            "PodTerminating": "0", "Draining": "0", "Kept": "0", "HoldsDatabase": "0"}  # fmt: skip
    finally:
        server.stop()
