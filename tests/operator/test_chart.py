"""The Helm chart: lint-clean, upgrades its CRD (which Helm's crds/ folder never would),
and gives the operator exactly the permissions it uses."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.databases import free_port
from harness.kubernetes import ROOT, ControlPlane
from harness.operator import OperatorProcess

CHART = ROOT / "charts" / "stratum-operator"
SA = "system:serviceaccount:stratum-system:stratum-operator"


def helm(cp: ControlPlane, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(cp.bin / "helm"), *args, "--kubeconfig", str(cp.kubeconfig)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def test_helm_lint_is_clean(installed_chart: ControlPlane) -> None:
    out = helm(installed_chart, "lint", str(CHART), "--strict")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 chart(s) failed" in out.stdout
    assert "symbolic link" not in out.stdout + out.stderr, "helm warns on every command"


def test_the_charts_crd_is_the_one_definition() -> None:
    copy = CHART / "files" / "stratumpools.stratum.io.yaml"
    assert not copy.is_symlink()
    assert copy.read_text() == (ROOT / "crds" / "stratumpools.stratum.io.yaml").read_text(), (
        "the chart's CRD differs from crds/: run `make chart-crd`"
    )


def test_helm_upgrade_updates_a_changed_crd(installed_chart: ControlPlane, tmp_path: Path) -> None:
    changed = tmp_path / "stratum-operator"
    shutil.copytree(CHART, changed)
    crd_file = changed / "files" / "stratumpools.stratum.io.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    columns.append(
        {"name": "Upgraded", "type": "string", "jsonPath": ".status.phase", "priority": 1}
    )
    crd_file.write_text(yaml.safe_dump(crd))
    try:
        out = helm(
            installed_chart, "upgrade", "stratum-operator", str(changed), "-n", "stratum-system"
        )
        assert out.returncode == 0, out.stderr
        served = installed_chart.kubectl("get", "crd", "stratumpools.stratum.io", "-o", "yaml")
        assert "name: Upgraded" in served
        assert "helm.sh/resource-policy: keep" in served
    finally:
        out = helm(
            installed_chart, "upgrade", "stratum-operator", str(CHART), "-n", "stratum-system"
        )
        assert out.returncode == 0, out.stderr


def test_an_upgrade_to_typed_resources_prunes_what_an_existing_pool_misspelt(
    installed_chart: ControlPlane, tmp_path: Path
) -> None:
    """What docs/upgrading.md warns of: a key the old, untyped subtree kept is gone once
    the typed CRD is installed, without the pool being written again."""
    old = tmp_path / "stratum-operator"
    shutil.copytree(CHART, old)
    crd_file = old / "files" / "stratumpools.stratum.io.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["proxy"]["properties"]["resources"] = {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        "description": "as before 0.1: kept as given"}  # fmt: skip
    crd_file.write_text(yaml.safe_dump(crd))
    release = ("upgrade", "stratum-operator")
    try:
        out = helm(installed_chart, *release, str(old), "-n", "stratum-system")
        assert out.returncode == 0, out.stderr
        misspelt = {"limts": {"memory": "1Gi"}, "requests": {"cpu": "100m"}}
        installed_chart.apply({
            "apiVersion": "stratum.io/v1alpha1", "kind": "StratumPool",
            "metadata": {"name": "misspelt", "namespace": "default"},
            "spec": {"upstreams": ["stratum+tcp://p:1"], "persistence": {"backend": "sqlite"},
                     "proxy": {"replicas": 1, "resources": misspelt}}})  # fmt: skip
        kept = installed_chart.get("stratumpool", "misspelt", "default")
        assert kept is not None and kept["spec"]["proxy"]["resources"] == misspelt
    finally:
        out = helm(installed_chart, *release, str(CHART), "-n", "stratum-system")
        assert out.returncode == 0, out.stderr
    read = installed_chart.get("stratumpool", "misspelt", "default")
    assert read is not None
    assert read["spec"]["proxy"]["resources"] == {"requests": {"cpu": "100m"}}
    installed_chart.kubectl("delete", "stratumpool", "misspelt", "-n", "default")


def can(cp: ControlPlane, verb: str, resource: str) -> bool:
    return (
        cp.kubectl("auth", "can-i", verb, resource, "--as", SA, "-A", check=False).strip() == "yes"
    )


def test_the_operator_gets_exactly_what_it_uses(installed_chart: ControlPlane) -> None:
    cp = installed_chart
    for verb, resource in [("patch", "statefulsets.apps"), ("patch", "stratumpools.stratum.io"),
                           ("patch", "stratumpools.stratum.io/status"), ("get", "secrets"),
                           ("delete", "jobs.batch"), ("patch", "pods"), ("create", "events"),
                           ("list", "persistentvolumeclaims"), ("delete", "persistentvolumeclaims"),
                           ("delete", "deployments.apps"), ("watch", "statefulsets.apps"),
                           ("watch", "services"), ("watch", "jobs.batch")]:  # fmt: skip
        assert can(cp, verb, resource), f"needs {verb} {resource}"
    for verb, resource in [("list", "secrets"), ("patch", "deployments.apps"), ("create", "pods"),
                           ("create", "persistentvolumeclaims"), ("delete", "statefulsets.apps"),
                           ("delete", "stratumpools.stratum.io"), ("get", "nodes"),
                           ("get", "stratumpools.stratum.io"), ("patch", "events"),
                           ("create", "clusterroles.rbac.authorization.k8s.io")]:  # fmt: skip
        assert not can(cp, verb, resource), f"must not {verb} {resource}"


def test_helm_test_runs_the_operators_own_check(installed_chart: ControlPlane) -> None:
    rendered = helm(installed_chart, "template", "stratum-operator", str(CHART), "-n",
                    "stratum-system", "--kube-version", "1.31.0")  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    docs = {(d["kind"], d["metadata"]["name"]): d
            for d in yaml.safe_load_all(rendered.stdout) if d}  # fmt: skip
    pod = docs[("Pod", "stratum-operator-check")]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["serviceAccountName"] == "stratum-operator"
    (container,) = pod["spec"]["containers"]
    url = "http://stratum-operator.stratum-system.svc:8080/healthz"
    assert container["args"] == ["check", "--health-url", url]
    ports = {p["name"]: p for p in docs[("Service", "stratum-operator")]["spec"]["ports"]}
    assert ports["health"]["port"] == 8080 and ports["health"]["targetPort"] == "health"


def test_the_check_passes_on_a_working_operator_and_names_what_fails(
    installed_chart: ControlPlane, operator: OperatorProcess
) -> None:
    identity = installed_chart.kubeconfig_for("stratum-system", "stratum-operator")
    env = {**os.environ, "KUBECONFIG": str(identity)}

    def check(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stratum_operator.cli", "check",
                               "--health-url", url], env=env, capture_output=True, text=True,
                              timeout=60, check=False)  # fmt: skip

    ok = check(f"http://127.0.0.1:{operator.health_port}/healthz")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("ok ") == 3 and "FAIL" not in ok.stdout
    down = check(f"http://127.0.0.1:{free_port()}/healthz")
    assert down.returncode == 1 and "FAIL  the operator at" in down.stdout, down.stdout


def test_monitoring_carries_the_alert_file_and_scrapes_both_ports_of_every_pool_pod(
    installed_chart: ControlPlane,
) -> None:
    from stratum_operator.builders import desired_objects
    from stratum_operator.spec import parse_spec

    rendered = helm(installed_chart, "template", "stratum-operator", str(CHART), "-n",
                    "stratum-system", "--kube-version", "1.31.0",
                    "--set", "monitoring.prometheusRule.enabled=true",
                    "--set", "monitoring.poolPodMonitor.enabled=true")  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(rendered.stdout) if d}
    alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert docs["PrometheusRule"]["spec"]["groups"] == alerts["groups"]
    monitor = docs["PodMonitor"]["spec"]
    spec = parse_spec({"upstreams": ["stratum+tcp://p:1"], "persistence": {"backend": "sqlite"}})
    sts = desired_objects("p", "ns", spec).workload[0]
    template = sts["spec"]["template"]
    assert monitor["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    assert {e["port"] for e in monitor["podMetricsEndpoints"]} == {
        "proxy-metrics",
        "writer-metrics",
    }
    assert {e["port"] for e in monitor["podMetricsEndpoints"]} <= ports
    plain = helm(installed_chart, "template", "stratum-operator", str(CHART), "-n", "s",
                 "--kube-version", "1.31.0")  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "PrometheusRule" not in plain.stdout and "stratum-pool" not in plain.stdout  # opt-in


def test_the_dashboards_are_configmaps_grafanas_sidecar_loads(
    installed_chart: ControlPlane,
) -> None:
    rendered = helm(installed_chart, "template", "stratum-operator", str(CHART), "-n",
                    "stratum-system", "--kube-version", "1.31.0",
                    "--set", "monitoring.dashboards.enabled=true")  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    maps = [d for d in yaml.safe_load_all(rendered.stdout)
            if d and d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"]["labels"]]  # fmt: skip
    by_name = {m["metadata"]["name"].removeprefix("stratum-operator-dashboard-"): m["data"]
               for m in maps}  # fmt: skip
    files = sorted((CHART / "files" / "dashboards").glob("*.json"))
    sql = sorted((CHART / "files" / "dashboards" / "sql").glob("*.json"))
    assert len(maps) == len(files) + 2 * len(sql) and files and sql
    for path in files:
        assert json.loads(by_name[path.stem][path.name]) == json.loads(path.read_text())
    # each SQL dashboard once per Grafana SQL data source type, the one file's SQL in each
    for path, (dialect, plugin) in itertools.product(sql, SQL_DATASOURCES.items()):
        name = f"{path.stem}-{dialect.lower()}"
        board = json.loads(by_name[name][f"{name}.json"])
        expected = path.read_text().replace("__SQL_DATASOURCE__", plugin)
        assert board == json.loads(expected.replace("__DIALECT__", dialect))
        assert {p["datasource"]["type"] for p in board["panels"]} == {plugin}


# Grafana's built-in SQL data source plugins, by the name the chart's dashboards use
SQL_DATASOURCES = {"PostgreSQL": "grafana-postgresql-datasource", "MySQL": "mysql"}


def render(cp: ControlPlane, *values: str) -> list[dict[str, Any]]:
    """``helm template`` of the chart with ``--set`` values, as a list of documents."""
    sets = [arg for value in values for arg in ("--set", value)]
    out = helm(cp, "template", "stratum-operator", str(CHART), "-n", "stratum-system",
               "--kube-version", "1.31.0", *sets)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def _operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_one_registry_value_moves_every_image_the_chart_and_the_pools_use(
    installed_chart: ControlPlane,
) -> None:
    from stratum_operator.builders import desired_objects
    from stratum_operator.images import ImageDefaults
    from stratum_operator.spec import parse_spec

    registry = "registry.example.com/mining"
    digest = "sha256:" + "b" * 64
    docs = render(installed_chart, f"image.registry={registry}", "image.pullPolicy=Always",
                  f"image.writer.digest={digest}")  # fmt: skip
    container = _operator_container(docs)
    (check,) = [d for d in docs if d["kind"] == "Pod"]
    assert container["image"] == f"{registry}/stratum-operator:0.1.0"
    assert check["spec"]["containers"][0]["image"] == container["image"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    # the pools' defaults, as the operator reads them from its environment
    images = ImageDefaults.from_env(env)
    assert images.proxy == f"{registry}/stratum-proxy:0.1.0"
    assert images.writer == f"{registry}/stratum-writer@{digest}", "a digest pins it"
    body = {"upstreams": ["stratum+tcp://p:1"],
            "persistence": {"backend": "postgres", "databaseUrlSecret": {"name": "d"}}}  # fmt: skip
    children = desired_objects("p", "ns", parse_spec(body, images))
    pods = [o["spec"]["template"]["spec"] for o in (children.workload[0], children.migration)
            if o is not None]  # fmt: skip
    containers = [c for pod in pods for c in pod["containers"]]
    assert all(c["image"].startswith(registry + "/") for c in containers), containers
    assert {c["imagePullPolicy"] for c in containers} == {"Always"}
    default = _operator_container(render(installed_chart))
    assert default["image"] == "ghcr.io/stratum-operator/stratum-operator:0.1.0"
    refused = helm(installed_chart, "template", "s", str(CHART), "--kube-version", "1.31.0",
                   "--set", "image.repository=elsewhere/operator")  # fmt: skip
    assert refused.returncode != 0 and "repository" in refused.stderr, "the old key, refused"


def test_with_watch_namespaces_the_operator_is_granted_only_there(
    installed_chart: ControlPlane,
) -> None:
    def rules(doc: dict[str, Any]) -> list[tuple[str, str]]:
        return sorted((group, resource) for rule in doc["rules"]
                      for group in rule["apiGroups"] for resource in rule["resources"])  # fmt: skip

    wide = render(installed_chart)
    (cluster,) = [d for d in wide if d["kind"] == "ClusterRole" and d["rules"][0]["apiGroups"]
                  == ["apiextensions.k8s.io"]]  # fmt: skip
    assert ("", "secrets") in rules(cluster) and not [d for d in wide if d["kind"] == "Role"]
    scoped = render(installed_chart, "watchNamespaces={farm-a,farm-b}")
    (narrow,) = [d for d in scoped if d["kind"] == "ClusterRole" and d["rules"][0]["apiGroups"]
                 == ["apiextensions.k8s.io"]]  # fmt: skip
    assert rules(narrow) == [("", "namespaces"), ("apiextensions.k8s.io",
                                                  "customresourcedefinitions")]  # fmt: skip
    roles = {d["metadata"]["namespace"]: d for d in scoped if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in scoped if d["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"farm-a", "farm-b"}
    for namespace, role in roles.items():
        # everything the cluster-wide grant gives in a namespace, in this one only
        assert sorted(rules(role) + rules(narrow)) == rules(cluster), namespace
        assert bindings[namespace]["subjects"] == [{"kind": "ServiceAccount",
                                                    "name": "stratum-operator",
                                                    "namespace": "stratum-system"}]  # fmt: skip
        assert bindings[namespace]["roleRef"]["name"] == role["metadata"]["name"]
