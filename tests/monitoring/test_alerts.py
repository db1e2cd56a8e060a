"""The chart's alert rules under Prometheus's own promtool (built from the Go module
proxy, tools/build-go-tools.sh): the rules check, and every alert has a unit test that
makes it fire and one that keeps it silent. The chart's PrometheusRule carries the very
file, and every alert has its runbook section."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from harness.go_tools import tools_bin

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "stratum-operator" / "files" / "alerts.yaml"
POD = {"namespace": "pools", "pod": "main-proxy-0"}


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    all_labels = {**POD, **labels}
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(all_labels.items()))
    return {"series": f"{name}{{{inner}}}", "values": values}


# alert -> (firing: series, minute, the alert's own labels, its value as the summary
# prints it), (silent: series, minute). Series values are one per minute.
CASES: dict[str, tuple[tuple[list[dict[str, str]], int, dict[str, str], str], tuple[list[dict[str, str]], int]]] = {
    "StratumSpoolDroppingShares": (
        ([series("stratum_proxy_spool_dropped", "0 0 5 5")], 3, {}, ""),
        ([series("stratum_proxy_spool_dropped", "0 0 0 0")], 3)),
    "StratumDeadLetters": (
        ([series("stratum_writer_dead_letters_total", "0 1 1 1")], 3, {}, ""),
        ([series("stratum_writer_dead_letters_total", "2 2 2 2")], 3)),
    "StratumDeadLettersFull": (
        ([series("stratum_writer_dead_letters_full", "0 1x5")], 4, {}, ""),
        ([series("stratum_writer_dead_letters_full", "0 1 0 1 0 0")], 4)),
    "StratumSpoolDamaged": (
        ([series("stratum_writer_spool_quarantine_bytes", "0 0 1234 1234")], 3, {}, "1234"),
        ([series("stratum_writer_spool_quarantine_bytes", "0x5")], 3)),
    "StratumWriterFallingBehind": (
        ([series("stratum_writer_oldest_event_age_seconds", "600x15")], 12, {}, "10m 0s"),
        ([series("stratum_writer_oldest_event_age_seconds", "600x5 1x10")], 12)),
    "StratumDatabaseUnreachable": (
        ([series("stratum_writer_backend_up", "1 0x5")], 4, {}, ""),
        ([series("stratum_writer_backend_up", "1 0 1x4")], 4)),
    "StratumUpstreamFailover": (
        ([series("stratum_proxy_upstream_failures_total", "0 1 1")], 2, {}, ""),
        ([series("stratum_proxy_upstream_failures_total", "4 4 4")], 2)),
    "StratumNoHealthyUpstream": (
        ([series("stratum_proxy_miners", "50x15"),
          series("stratum_proxy_upstream_failures_total", "0+1x15"),
          series("stratum_proxy_shares_total", "100x15", verdict="accepted", code="")],
         12, {}, ""),
        ([series("stratum_proxy_miners", "50x15"),
          series("stratum_proxy_upstream_failures_total", "0+1x15"),
          series("stratum_proxy_shares_total", "100+60x15", verdict="accepted", code="")], 12)),
    "StratumRejectRateHigh": (
        ([series("stratum_proxy_shares_total", "0+90x30", verdict="accepted", code=""),
          series("stratum_proxy_shares_total", "0+10x30", verdict="rejected", code="23")],
         28, {}, "10%"),
        ([series("stratum_proxy_shares_total", "0+99x30", verdict="accepted", code=""),
          series("stratum_proxy_shares_total", "0+1x30", verdict="rejected", code="23")], 28)),
    "StratumMinersButNothingAccepted": (
        ([series("stratum_proxy_miners", "20x25"),
          series("stratum_proxy_shares_total", "500x25", verdict="accepted", code="")],
         22, {}, ""),
        ([series("stratum_proxy_miners", "20x25"),
          series("stratum_proxy_shares_total", "500+30x25", verdict="accepted", code="")], 22)),
    "StratumProxyDown": (
        ([series("up", "1 0x5", container="proxy")], 4, {"container": "proxy"}, ""),
        ([series("up", "1x5", container="proxy")], 4)),
    "StratumWriterDown": (
        ([series("up", "1 0x5", container="writer")], 4, {"container": "writer"}, ""),
        ([series("up", "1x5", container="writer"),
          series("stratum_pod_sidecar_up", "1x5", sidecar="writer")], 4)),
    "StratumDrainNotProgressing": (
        ([series("stratum_operator_spool_claim_progress_timestamp_seconds", "0x40",
                 pool="main", claim="spool-main-proxy-2")],
         35, {"pool": "main", "claim": "spool-main-proxy-2"}, "35m 0s"),
        ([series("stratum_operator_spool_claim_progress_timestamp_seconds", "0+60x40",
                 pool="main", claim="spool-main-proxy-2")], 35)),
    "StratumSpoolClaimKept": (
        ([series("stratum_operator_spool_claims", "0 1x10", pool="main", state="Kept")],
         8, {"pool": "main", "state": "Kept"}, "1"),
        ([series("stratum_operator_spool_claims", "0x10", pool="main", state="Kept"),
          series("stratum_operator_spool_claims", "2x10", pool="main", state="Draining")], 8)),
    "StratumOperatorReconcileErrors": (
        ([series("stratum_operator_reconciles_total", "0+1x40", result="error", trigger="tick")],
         35, {"result": "error", "trigger": "tick"}, ""),
        ([series("stratum_operator_reconciles_total", "0+1x40", result="ok", trigger="tick")], 35)),
}  # fmt: skip


def rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"]}


def expected_annotations(
    rule: dict[str, Any], labels: dict[str, str], value: str
) -> dict[str, str]:
    """The rule's own annotation texts with this case's labels and value put in."""
    out = {}
    for key, template in rule["annotations"].items():
        text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m[1], ""), template)
        out[key] = re.sub(r"\{\{ \$value( \| \w+)? \}\}", value, text)
    return out


def unit_tests() -> dict[str, Any]:
    found = rules()
    tests = []
    for alert, ((fire, at, own, value), (quiet, quiet_at)) in CASES.items():
        rule = found[alert]
        labels = {**POD, **own, **rule["labels"]}
        tests.append({"interval": "1m", "input_series": fire, "alert_rule_test": [{
            "eval_time": f"{at}m", "alertname": alert,
            "exp_alerts": [{"exp_labels": labels,
                            "exp_annotations": expected_annotations(rule, labels, value)}]}]})  # fmt: skip
        tests.append({"interval": "1m", "input_series": quiet, "alert_rule_test": [
            {"eval_time": f"{quiet_at}m", "alertname": alert, "exp_alerts": []}]})  # fmt: skip
    return {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = tools_bin("prometheus") / "promtool"
    return subprocess.run([str(tool), *args], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def test_the_rules_pass_promtools_check() -> None:
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_fires_when_it_should_and_stays_silent_otherwise(tmp_path: Path) -> None:
    assert set(CASES) == set(rules()), "every alert needs its unit test"
    spec = tmp_path / "alerts_test.yaml"
    spec.write_text(yaml.safe_dump(unit_tests(), sort_keys=False))
    out = promtool("test", "rules", str(spec))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_every_alert_has_its_runbook() -> None:
    runbooks = (ROOT / "docs" / "runbooks.md").read_text()
    for alert, rule in rules().items():
        assert rule["annotations"]["runbook"] == f"docs/runbooks.md#{alert.lower()}"
        assert f"\n## {alert}\n" in runbooks, f"docs/runbooks.md needs a section for {alert}"
