"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager.

Built from the Go module proxy by ``tools/build-go-tools.sh`` (pinned, cached outside the
repo). RBAC is on, so an identity without a permission is refused as in a cluster;
the controller manager runs the garbage collector and the Deployment, ReplicaSet and
Job controllers for real. There is no kubelet: tests play the kubelet where they need a
pod to be ready (``set_pod_ready``). The scheduler runs only where a test starts it
(``start_scheduler``), on Nodes it adds (``add_node``).

Identities: an admin token (group ``system:masters``) for the test itself, and
``kubeconfig_for(service_account)`` for a process that must run with exactly the
permissions a ServiceAccount was given (the operator, with the chart's RBAC).
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from harness.databases import ServerUnavailable, free_port
from harness.go_tools import etcd_argv, tools_bin
from harness.process_group import ProcessGroup

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "stratum-test-admin-token"


class ControlPlane(ProcessGroup):
    def __init__(self) -> None:
        super().__init__("stratum-k8s-")
        self.bin = tools_bin("etcd", "kubernetes", "helm")
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = self.dir / "admin.kubeconfig"
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    # -- lifecycle --------------------------------------------------------------------

    def _start(self) -> None:
        d = self.dir
        subprocess.run(["openssl", "genrsa", "-out", str(d / "sa.key"), "2048"], check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run(["openssl", "rsa", "-in", str(d / "sa.key"), "-pubout", "-out",
                        str(d / "sa.pub")], check=True, capture_output=True)  # fmt: skip
        (d / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin,"system:masters"\n')
        etcd_port, peer_port = free_port(), free_port()
        self._spawn("etcd", etcd_argv(self.bin, d / "etcd", etcd_port, peer_port))
        self._spawn("kube-apiserver", [
            str(self.bin / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}", f"--cert-dir={d / 'certs'}",
            "--authorization-mode=RBAC", f"--token-auth-file={d / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={d / 'sa.pub'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16", "--allow-privileged=true",
            "--disable-admission-plugins=ServiceAccount", "--enable-priority-and-fairness=false",
        ])  # fmt: skip
        self._wait_ready(90)
        self.kubeconfig.write_text(self._kubeconfig(ADMIN_TOKEN))
        self._spawn("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"), f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
            f"--service-account-private-key-file={d / 'sa.key'}",
            "--controllers=garbagecollector,deployment,replicaset,statefulset,job,cronjob,namespace,"
            "serviceaccount,disruption,ttl-after-finished,endpointslice,pvc-protection",
        ])  # fmt: skip

    def start_scheduler(self) -> None:
        """The real kube-scheduler, for a test that needs pods placed on (fake) nodes."""
        self._spawn("kube-scheduler", [str(self.bin / "kube-scheduler"),
                                       f"--kubeconfig={self.kubeconfig}", "--leader-elect=false",
                                       "--secure-port=0"])  # fmt: skip

    def add_node(self, name: str, labels: dict[str, str],
                 taints: list[dict[str, str]] | None = None) -> None:  # fmt: skip
        """A Node the scheduler may place pods on: Ready, with room (no kubelet behind it;
        no node lifecycle controller to say otherwise)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.request("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **labels}},
        })  # fmt: skip
        # the admission plugin TaintNodesByCondition taints a new Node not-ready; the node
        # lifecycle controller, which would lift it, isn't run: lift it as it would
        self.request("PATCH", f"/api/v1/nodes/{name}", {"spec": {"taints": taints or None}},
                     "application/merge-patch+json")  # fmt: skip
        room = {"cpu": "4", "memory": "8Gi", "pods": "110"}
        self.request("PATCH", f"/api/v1/nodes/{name}/status", {"status": {
            "capacity": room, "allocatable": room,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
        }}, "application/merge-patch+json")  # fmt: skip

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise ServerUnavailable(f"control plane process exited: {self.logs()}")
            try:
                self.request("GET", "/readyz")
                return
            except (OSError, urllib.error.HTTPError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ServerUnavailable(f"kube-apiserver not ready in {timeout}s: {last}")

    # -- identities -------------------------------------------------------------------

    def _kubeconfig(self, token: str) -> str:
        ca = self.dir / "certs" / "apiserver.crt"
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url,
                                                      "certificate-authority": str(ca)}}],
            "users": [{"name": "test", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        })  # fmt: skip

    def kubeconfig_for(self, namespace: str, service_account: str) -> Path:
        """A kubeconfig that acts as exactly this ServiceAccount (a TokenRequest token)."""
        token = self.kubectl("create", "token", service_account, "-n", namespace,
                             "--duration=6h").strip()  # fmt: skip
        path = self.dir / f"{namespace}-{service_account}.kubeconfig"
        path.write_text(self._kubeconfig(token))
        return path

    # -- talking to it ----------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        out = subprocess.run([str(self.bin / "kubectl"), f"--kubeconfig={self.kubeconfig}",
                              *args], input=stdin, capture_output=True, text=True,
                             timeout=120, check=False)  # fmt: skip
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout if check else out.stdout + out.stderr

    def apply(self, manifest: dict[str, Any] | str, *, check: bool = True) -> str:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        return self.kubectl("apply", "-f", "-", stdin=text, check=check)

    def request(self, method: str, path: str, body: Any = None,
                content_type: str = "application/json") -> Any:  # fmt: skip
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # readiness, before the CA
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": content_type})  # fmt: skip
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            raw = r.read()
        return json.loads(raw) if raw[:1] in (b"{", b"[") else raw.decode()

    def get(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        out = self.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
        return json.loads(out) if out.lstrip().startswith("{") else None

    def wait(self, what: str, predicate: Any, timeout: float = 30) -> Any:
        """Poll ``predicate()`` until it returns something truthy; say what never came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def set_pod_ready(self, namespace: str, name: str, ip: str, ready: bool = True) -> None:
        """Play the kubelet: the pod runs at ``ip`` and its containers are (not) ready."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pod = self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        containers = [c["name"] for c in pod["spec"]["containers"]]
        status = {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
            "conditions": [{"type": t, "status": "True" if ready else "False",
                            "lastTransitionTime": now}
                           for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
            "containerStatuses": [{"name": c, "ready": ready, "restartCount": 0, "image": "x",
                                   "imageID": "", "started": True,
                                   "state": {"running": {"startedAt": now}}}
                                  for c in containers],
        }  # fmt: skip
        self.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status",
                     {"status": status}, "application/merge-patch+json")  # fmt: skip
