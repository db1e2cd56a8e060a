"""What the operator reaches, on the real control plane: the miners' Service shaped by the
pool's template and kept so, and an operator confined by ``watchNamespaces`` to Roles in
those namespaces that still runs its pools there.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.kubernetes import ROOT, ControlPlane
from harness.operator import OperatorProcess
from harness.stratum_pools import pool, proxy_pods, ready_pool, status

LB_TYPE = "service.beta.kubernetes.io/aws-load-balancer-type"


def test_the_service_template_is_applied_and_kept(installed_chart: ControlPlane, ns: str) -> None:
    cp = installed_chart
    template = {
        "metadata": {"labels": {"team": "farms"}, "annotations": {LB_TYPE: "nlb"}},
        "spec": {"loadBalancerSourceRanges": ["203.0.113.0/24"]},
    }
    ready_pool(cp, "shaped", ns, proxy={"replicas": 2, "serviceTemplate": template,
                                        "nodePort": 30333})  # fmt: skip

    def service() -> dict[str, Any]:
        found = cp.get("service", "shaped", ns)
        assert found is not None
        return found

    applied = service()
    assert applied["metadata"]["annotations"][LB_TYPE] == "nlb"
    assert applied["metadata"]["labels"]["team"] == "farms"
    assert applied["spec"]["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert applied["spec"]["externalTrafficPolicy"] == "Local"
    assert applied["spec"]["ports"][0]["nodePort"] == 30333
    # a hand edit of what the template sets comes back; what a cloud controller adds stays
    cp.kubectl("annotate", "service", "shaped", "-n", ns, f"{LB_TYPE}=classic",
               "cloud.example.com/load-balancer-id=lb-1", "--overwrite")  # fmt: skip
    cp.wait("the template's annotation back",
            lambda: service()["metadata"]["annotations"][LB_TYPE] == "nlb", 15)  # fmt: skip
    assert service()["metadata"]["annotations"]["cloud.example.com/load-balancer-id"] == "lb-1"
    # the template edited: the Service follows, and what it no longer sets goes
    edit = {"spec": {"proxy": {"serviceTemplate": {"metadata": {
        "annotations": {LB_TYPE: None, "example.com/tier": "gold"}}}}}}  # fmt: skip
    cp.kubectl("patch", "sp", "shaped", "-n", ns, "--type=merge", "-p", json.dumps(edit))
    cp.wait("the new annotation, and the old one gone", lambda: (
        (a := service()["metadata"]["annotations"]).get("example.com/tier") == "gold"
        and LB_TYPE not in a), 15)  # fmt: skip


SA = "system:serviceaccount:scoped-system:stratum-operator"


@pytest.fixture
def scoped_plane(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane of its own (no cluster-wide operator beside it), the chart
    installed with ``watchNamespaces: [farm]``."""
    cp = ControlPlane()
    try:
        for namespace in ("farm", "elsewhere"):
            cp.kubectl("create", "namespace", namespace)
        out = subprocess.run(
            [str(cp.bin / "helm"), "install", "stratum-operator",
             str(ROOT / "charts" / "stratum-operator"), "-n", "scoped-system",
             "--create-namespace", "--set", "watchNamespaces={farm}",
             "--kubeconfig", str(cp.kubeconfig), "--wait=false"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        cp.wait("the StratumPool CRD to be served", lambda: "stratumpools" in cp.kubectl(
            "api-resources", "--api-group=stratum.io", check=False), 60)  # fmt: skip
        yield cp
    finally:
        cp.stop()


def test_with_watch_namespaces_the_operator_runs_its_pools_with_roles_there_only(
    scoped_plane: ControlPlane, tmp_path: Path
) -> None:
    cp = scoped_plane

    def can(verb: str, resource: str, *where: str) -> bool:
        out = cp.kubectl("auth", "can-i", verb, resource, "--as", SA, *where, check=False)
        return out.strip() == "yes"

    assert can("get", "secrets", "-n", "farm") and can("patch", "pods", "-n", "farm")
    for verb, resource in [("get", "secrets"), ("patch", "pods"), ("list", "pods"),
                           ("delete", "persistentvolumeclaims"), ("patch", "statefulsets.apps"),
                           ("list", "stratumpools.stratum.io")]:  # fmt: skip
        assert not can(verb, resource, "-n", "elsewhere"), f"{verb} {resource} elsewhere"
        assert not can(verb, resource, "-A"), f"{verb} {resource} in every namespace"
    operator = OperatorProcess(tmp_path, cp.kubeconfig_for("scoped-system", "stratum-operator"),
                               namespaces="farm")  # fmt: skip
    operator.spawn(operator.command())
    try:
        ready_pool(cp, "scoped", "farm")
        cp.apply(pool("unwatched", "elsewhere"))
        time.sleep(5)
        assert status(cp, "unwatched", "elsewhere") == {}, "not its namespace: untouched"
        assert "Forbidden" not in operator.log.read_text(), operator.log.read_text()[-3000:]
    finally:
        operator.terminate(30)


def test_a_pool_runs_in_a_namespace_enforcing_the_restricted_pod_security_standard(
    installed_chart: ControlPlane, ns: str
) -> None:
    """Every pod the operator makes (the migration Job's, the proxies') is admitted where
    PodSecurity ``restricted`` is enforced: a refused pod would never appear."""
    cp = installed_chart
    cp.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    priority = f"mining-{ns}"
    cp.apply({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
              "metadata": {"name": priority}, "value": 100000})  # fmt: skip
    ready_pool(cp, "restricted", ns, podTemplate={"priorityClassName": priority})
    pods = proxy_pods(cp, "restricted", ns)
    assert [p["spec"]["priority"] for p in pods] == [100000] * 2, "the pool's priority"
