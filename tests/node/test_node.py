"""A real node in the test rig: a kubelet registers and is Ready, a pod runs under
containerd and runc in a sandbox of our own pause image, on the node's bridge, in a
namespace that enforces the ``restricted`` Pod Security profile; from inside it reaches
a server on the host and the API server (directly and through kube-proxy's
``kubernetes`` Service); ``kubectl logs`` and ``kubectl exec`` work; a claim of the
default StorageClass binds when its pod is scheduled and the pod writes to it; cluster
DNS resolves a Service's name; and tearing the node down leaves nothing of it on the
machine.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.databases import ServerUnavailable
from harness.node import RealNode
from harness.node.host import HostState, leftovers
from harness.node.plane import NodeControlPlane

NAMESPACE = "reach"
# Go's TLS servers answer a plain HTTP request so: the API server, not merely its port
API_SERVER_ANSWER = "Client sent an HTTP request to an HTTPS server"


class LineServer:
    """A TCP server on the host: answers one line per connection and records who sent
    what (the sender's address as the host sees it)."""

    def __init__(self, address: str) -> None:
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.heard: list[tuple[str, str]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, (peer, _) = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                line = conn.makefile().readline().strip()
                self.heard.append((peer, line))
                conn.sendall(b"hello from the host\n")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def host_before() -> HostState:
    return HostState.take()


@pytest.fixture(scope="module")
def node(host_before: HostState) -> Iterator[RealNode]:
    real = RealNode()
    yield real
    real.stop()


def restricted_pod(name: str, image: str, script: str) -> dict[str, Any]:
    """A pod the ``restricted`` profile admits: non-root, no privilege escalation, no
    capabilities, the runtime's default seccomp profile; a read-only root too."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": image, "imagePullPolicy": "Never",
                "command": ["/bin/sh", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True},
            }],
            "terminationGracePeriodSeconds": 1,
        },
    }  # fmt: skip


def test_the_node_registers_ready_at_its_bridge_address(node: RealNode) -> None:
    assert node.plane is not None
    listed = json.loads(node.plane.kubectl("get", "node", node.name, "-o", "json"))
    assert node.ready_condition(node.plane)["status"] == "True"
    addresses = {a["type"]: a["address"] for a in listed["status"]["addresses"]}
    assert addresses["InternalIP"] == node.network.gateway
    assert listed["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")


def test_a_restricted_pod_reaches_the_host_and_the_api_server(node: RealNode) -> None:
    plane = node.plane
    assert plane is not None
    gateway, busybox = node.network.gateway, node.images.busybox[0]
    server = LineServer(gateway)
    try:
        plane.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})  # fmt: skip
        root_pod = restricted_pod("as-root", busybox, "true")
        root_pod["spec"]["securityContext"] = {"runAsUser": 0}
        refused = plane.apply(root_pod, check=False)
        assert "violates PodSecurity" in refused, refused

        script = (f"echo from-the-pod | nc -w 10 {gateway} {server.port}; "
                  f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 "
                  f"{node.network.kubernetes_service_ip} 443; exec sleep 3600")  # fmt: skip
        plane.apply(restricted_pod("reach", busybox, script))
        plane.kubectl("wait", "-n", NAMESPACE, "pod/reach", "--for=condition=Ready",
                      "--timeout=120s")  # fmt: skip
        pod = plane.get("pod", "reach", NAMESPACE)
        assert pod is not None
        pod_ip = pod["status"]["podIP"]
        assert pod_ip in [str(ip) for ip in node.network.pod_cidr.hosts()]

        # the host's server heard the pod, from the pod's own address (no NAT)
        plane.wait("the pod's line at the host", lambda: server.heard, timeout=30)
        assert server.heard == [(pod_ip, "from-the-pod")]
        # kubectl logs: what the host answered, and the API server through its Service
        logs = plane.wait("the pod's logs", lambda: _logs_with(plane, API_SERVER_ANSWER), 30)
        assert "hello from the host" in logs

        # kubectl exec: the API server at the node's address, and the pod's ServiceAccount
        direct = plane.kubectl("exec", "-n", NAMESPACE, "reach", "--", "/bin/sh", "-c",
                               f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 {gateway} "
                               f"{plane.port}")  # fmt: skip
        assert API_SERVER_ANSWER in direct
        token_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
        namespace = plane.kubectl("exec", "-n", NAMESPACE, "reach", "--", "cat",
                                  f"{token_dir}/namespace")  # fmt: skip
        assert namespace == NAMESPACE
    finally:
        server.close()


def _logs_with(plane: NodeControlPlane, text: str) -> str | None:
    logs = plane.kubectl("logs", "-n", NAMESPACE, "reach", check=False)
    return logs if text in logs else None


def test_a_claim_binds_on_first_use_and_names_resolve(node: RealNode) -> None:
    """The default StorageClass provisions a claim when its pod is scheduled, the pod
    writes to it; cluster DNS answers for a Service's name with its ClusterIP."""
    plane = node.plane
    assert plane is not None
    plane.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": "data", "namespace": NAMESPACE},
                 "spec": {"accessModes": ["ReadWriteOnce"],
                          "resources": {"requests": {"storage": "16Mi"}}}})  # fmt: skip
    assert _claim_phase(plane, "data") == "Pending", "bound only once a pod uses it"
    pod = restricted_pod("claimant", node.images.busybox[0], (
        "echo kept > /data/file && nslookup kubernetes.default.svc.cluster.local; "
        "exec sleep 3600"))  # fmt: skip
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    pod["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    plane.apply(pod)
    plane.kubectl("wait", "-n", NAMESPACE, "pod/claimant", "--for=condition=Ready",
                  "--timeout=120s")  # fmt: skip
    assert _claim_phase(plane, "data") == "Bound"
    claim = plane.get("pvc", "data", NAMESPACE)
    assert claim is not None and claim["spec"]["storageClassName"] == "local-path"
    volume = plane.get("pv", claim["spec"]["volumeName"], "")
    assert volume is not None
    directory = Path(volume["spec"]["hostPath"]["path"])
    assert directory.is_relative_to(node.dir)
    assert (directory / "file").read_text() == "kept\n"
    logs = plane.wait("the pod's lookup", lambda: plane.kubectl(
        "logs", "-n", NAMESPACE, "claimant", check=False), 30)  # fmt: skip
    assert f"Address: {node.network.kubernetes_service_ip}" in logs, logs


def _claim_phase(plane: NodeControlPlane, name: str) -> str:
    claim = plane.get("pvc", name, NAMESPACE)
    return str((claim or {}).get("status", {}).get("phase", ""))


def test_a_second_node_is_refused_while_one_is_up(node: RealNode) -> None:
    """Nodes on one machine would share the kubelet's and the runtime's host paths."""
    with pytest.raises(ServerUnavailable, match="another real test node is up"):
        RealNode()


def test_teardown_leaves_nothing_of_the_node(node: RealNode, host_before: HostState) -> None:
    """Run last: the pod of the test before is still running when the node stops."""
    node.stop()
    after = HostState.take((node.dir,))
    assert leftovers(host_before, after) == []
    assert not node.dir.exists()
    assert not [h for h in Path("/sys/fs/cgroup").iterdir()
                if (h / node.cgroup_root.lstrip("/")).exists()]  # fmt: skip
