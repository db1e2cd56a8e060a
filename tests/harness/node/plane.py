"""The control plane of a real node: today's (``harness.kubernetes``) started otherwise.

Where the played-kubelet plane listens on 127.0.0.1 with ServiceAccount admission off,
this one binds to and advertises the node's bridge gateway (pods route to it, in-cluster
clients reach it through the ``kubernetes`` Service), admits ServiceAccounts, authorizes
``Node,RBAC`` (with NodeRestriction), runs the controllers a node needs, and the
scheduler. Each part logs in as the identity Kubernetes' default RBAC expects of it;
the API server reaches the kubelet with a client certificate the kubelet trusts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.databases import free_port
from harness.go_tools import etcd_argv, tools_bin
from harness.kubernetes import ADMIN_TOKEN, ControlPlane
from harness.node.network import NodeNetwork

# today's controllers, and those a node needs: volumes bound, nodes watched and their pods
# evicted or collected, the cluster's CA published to every namespace, tokens for
# ServiceAccounts, aggregated roles (admin, edit, view) for charts' RBAC
CONTROLLERS = (
    "garbage-collector-controller", "deployment-controller", "replicaset-controller",
    "statefulset-controller", "job-controller", "cronjob-controller", "namespace-controller",
    "serviceaccount-controller", "disruption-controller", "ttl-after-finished-controller",
    "endpointslice-controller", "persistentvolumeclaim-protection-controller",
    "persistentvolume-binder-controller", "persistentvolume-protection-controller",
    "node-lifecycle-controller", "taint-eviction-controller",
    "root-ca-certificate-publisher-controller", "pod-garbage-collector-controller",
    "serviceaccount-token-controller", "clusterrole-aggregation-controller",
)  # fmt: skip


@dataclass(frozen=True)
class Identity:
    user: str
    groups: str

    def token_line(self, token: str) -> str:
        return f'{token},{self.user},{self.user},"{self.groups}"'


def node_identity(node_name: str) -> Identity:
    return Identity(f"system:node:{node_name}", "system:nodes")


SCHEDULER = Identity("system:kube-scheduler", "")
KUBE_PROXY = Identity("system:kube-proxy", "")


class NodeControlPlane(ControlPlane):
    def __init__(self, network: NodeNetwork, node_name: str) -> None:
        self.network = network
        self.node_name = node_name
        tools_bin("kubernetes-node")  # the same directory as the control plane's tools
        super().__init__()

    # -- lifecycle --------------------------------------------------------------------

    def _start(self) -> None:
        d = self.dir
        self.url = f"https://{self.network.gateway}:{self.port}"  # not today's 127.0.0.1
        _openssl("genrsa", "-out", str(d / "sa.key"), "2048")
        _openssl("rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))
        self.kubelet_ca = self._kubelet_client_certificate()
        tokens = {identity: secrets.token_hex(16) for identity in
                  (node_identity(self.node_name), SCHEDULER, KUBE_PROXY)}  # fmt: skip
        (d / "tokens.csv").write_text("".join(
            f"{line}\n" for line in [f'{ADMIN_TOKEN},admin,admin,"system:masters"',
                                     *(i.token_line(t) for i, t in tokens.items())]))  # fmt: skip
        etcd_port, peer_port = free_port(), free_port()
        self._spawn("etcd", etcd_argv(self.bin, d / "etcd", etcd_port, peer_port))
        self._spawn("kube-apiserver", self._apiserver_argv(etcd_port))
        self._wait_ready(90)
        self.kubeconfig.write_text(self._kubeconfig(ADMIN_TOKEN))
        for identity, token in tokens.items():
            self.kubeconfig_of(identity).write_text(self._kubeconfig(token))
        self._spawn("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"), f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
            f"--service-account-private-key-file={d / 'sa.key'}",
            f"--root-ca-file={d / 'certs' / 'apiserver.crt'}",
            f"--controllers={','.join(CONTROLLERS)}",
        ])  # fmt: skip
        self._spawn("kube-scheduler", [
            str(self.bin / "kube-scheduler"), f"--kubeconfig={self.kubeconfig_of(SCHEDULER)}",
            "--leader-elect=false", "--secure-port=0",
        ])  # fmt: skip
        self.controllers = self.procs[-2:]  # the controller manager and the scheduler

    def _apiserver_argv(self, etcd_port: int) -> list[str]:
        d, gateway = self.dir, self.network.gateway
        return [
            str(self.bin / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--bind-address={gateway}", f"--advertise-address={gateway}",
            f"--secure-port={self.port}", f"--cert-dir={d / 'certs'}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--token-auth-file={d / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={d / 'sa.pub'}",
            f"--service-account-signing-key-file={d / 'sa.key'}",
            f"--service-cluster-ip-range={self.network.service_cidr}",
            # logs and exec go to the node's address, not its name (there is no DNS)
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={d / 'kubelet-client.crt'}",
            f"--kubelet-client-key={d / 'kubelet-client.key'}",
            "--enable-priority-and-fairness=false",
        ]  # fmt: skip

    def _kubelet_client_certificate(self) -> Path:
        """A CA the kubelet trusts for clients, and the API server's certificate from it
        (group system:masters, so the kubelet's webhook authorizes logs and exec)."""
        d = self.dir
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-days", "1", "-subj", "/CN=stratum-node-kubelet-client-ca",
                 "-keyout", str(d / "kubelet-ca.key"), "-out", str(d / "kubelet-ca.crt"))  # fmt: skip
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client",
                 "-keyout", str(d / "kubelet-client.key"), "-out", str(d / "kubelet-client.csr"))  # fmt: skip
        _openssl("x509", "-req", "-in", str(d / "kubelet-client.csr"), "-days", "1",
                 "-CA", str(d / "kubelet-ca.crt"), "-CAkey", str(d / "kubelet-ca.key"),
                 "-CAcreateserial", "-out", str(d / "kubelet-client.crt"))  # fmt: skip
        return d / "kubelet-ca.crt"

    def stop_controllers(self) -> None:
        """The controller manager and the scheduler stopped: no controller replaces a pod
        deleted from now on (a StatefulSet's, a Deployment's), so the node can empty."""
        for proc in self.controllers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)

    # -- identities -------------------------------------------------------------------

    def kubeconfig_of(self, identity: Identity) -> Path:
        """The kubeconfig a part logs in with as ``identity`` (a static token)."""
        return self.dir / f"{identity.user.replace(':', '-')}.kubeconfig"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)
