"""A real Kubernetes node for tests: a kubelet running pods under containerd and runc.

``RealNode()`` brings up, on free ports and in temporary directories, a control plane of
its own (``plane``: etcd, API server, controller manager, scheduler), a bridge whose
gateway is the node's address (``network``), containerd with the node's pause and
busybox images imported (``images``), cluster DNS (CoreDNS on the host, at the gateway:
``dns``), the kubelet (a node ``name`` that is Ready when the constructor returns),
kube-proxy, and the default StorageClass's provisioner (``storage``). Pods get an
address on the bridge and reach the host's gateway address and, through kube-proxy,
the ``kubernetes`` Service; names under ``cluster.local`` resolve; claims bind on first
use. ``import_images`` adds our own images (a node here can't pull).

``stop()`` stops the controllers, deletes the pods, stops everything, and puts the
machine back as it was (``harness.node.host``): no process, mount, link, rule, sysctl
or file of the node's is left. One node at a time per machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness.databases import ServerUnavailable, free_port
from harness.go_tools import tools_bin
from harness.node.dns import coredns_argv, corefile
from harness.node.host import (
    HostState,
    NodeLock,
    kill_cgroup_tree,
    restore_host,
    shim_pids,
    unmount_new,
)
from harness.node.kubelet import (
    KubeletPaths,
    kube_proxy_config,
    kubelet_argv,
    kubelet_config,
)
from harness.node.network import (
    choose_network,
    cni_config,
    create_bridge,
    delete_bridge,
    routed_networks,
)
from harness.node.plane import KUBE_PROXY, NodeControlPlane, node_identity
from harness.node.runtime import (
    build_node_images,
    containerd_config,
    ctr,
    running_tasks,
    socket_path,
)
from harness.node.storage import LocalPathStorage
from harness.process_group import ProcessGroup


class RealNode(ProcessGroup):
    def __init__(self) -> None:
        self.lock = NodeLock()
        self.host_before = HostState.take()
        super().__init__("stratum-node-")
        self.name = f"stratum-node-{secrets.token_hex(3)}"
        self.network = choose_network(routed_networks(), random.Random())
        self.cgroup_root = f"/{self.name}"
        self.runtime_root = self.dir / "containerd"
        self.plane: NodeControlPlane | None = None
        self.stopped = False
        try:
            self.images = build_node_images()
            self._start()
        except BaseException:
            self.stop()
            raise

    # -- start --------------------------------------------------------------------------

    def _start(self) -> None:
        create_bridge(self.network)
        self.plane = NodeControlPlane(self.network, self.name)
        self._make_cgroup_root()
        self._start_containerd()
        self._start_dns(self.plane)
        self._start_kubelet(self.plane)
        self._start_kube_proxy(self.plane)
        self._wait_node_ready(self.plane, 120)
        self._start_storage(self.plane)

    def _make_cgroup_root(self) -> None:
        """The kubelet's cgroup root, in every hierarchy (cgroup v1, and v2's ``unified``
        where runc also places containers); a cpuset cgroup starts with no CPUs."""
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            if not (hierarchy / "cgroup.procs").exists():
                continue
            cgroup = hierarchy / self.cgroup_root.lstrip("/")
            cgroup.mkdir()
            for inherited in ("cpuset.cpus", "cpuset.mems"):
                if (cgroup / inherited).exists():
                    (cgroup / inherited).write_text((hierarchy / inherited).read_text())

    def _start_containerd(self) -> None:
        root = self.runtime_root
        root.mkdir()
        config = root / "config.toml"
        config.write_text(containerd_config(root, self.images.pause[0], self.dir / "cni"))
        (self.dir / "cni").mkdir()
        (self.dir / "cni" / f"10-{self.network.bridge}.conflist").write_text(
            json.dumps(cni_config(self.network, self.dir / "ipam")))  # fmt: skip
        self._spawn("containerd", ["containerd", "--config", str(config)])
        deadline = time.monotonic() + 30
        while not socket_path(root).exists():
            if time.monotonic() > deadline or self.procs[-1].poll() is not None:
                raise ServerUnavailable(f"containerd did not start: {self.logs()}")
            time.sleep(0.1)
        for _, archive in (self.images.pause, self.images.busybox):
            ctr(root, "images", "import", str(archive))

    def _start_dns(self, plane: NodeControlPlane) -> None:
        """CoreDNS at the node's address, serving once it has read the cluster's Services."""
        ready_port = free_port()
        path = self.dir / "Corefile"
        path.write_text(corefile(self.network, plane.kubeconfig, ready_port))
        self._spawn("coredns", coredns_argv(tools_bin("coredns"), path))
        plane.wait("CoreDNS ready", lambda: self._answers(f"http://127.0.0.1:{ready_port}/ready"),
                   timeout=60)  # fmt: skip

    def _answers(self, url: str) -> bool:
        if self.procs[-1].poll() is not None:
            raise ServerUnavailable(f"coredns exited: {self.logs()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _start_storage(self, plane: NodeControlPlane) -> None:
        """The local-path provisioner and its default StorageClass; claims' directories
        under the node's directory."""
        self.storage = LocalPathStorage(self.dir / "volumes", self.images.busybox[0])
        for manifest in self.storage.manifests():
            plane.apply(manifest)
        self._spawn("local-path-provisioner",
                    self.storage.argv(tools_bin("local-path"), plane.kubeconfig))  # fmt: skip

    def _start_kubelet(self, plane: NodeControlPlane) -> None:
        paths = KubeletPaths(
            root=self.dir / "kubelet", config=self.dir / "kubelet.json",
            kubeconfig=plane.kubeconfig_of(node_identity(self.name)),
            client_ca=plane.kubelet_ca, runtime_socket=socket_path(self.runtime_root),
            pod_logs=self.dir / "pod-logs", volume_plugins=self.dir / "volume-plugins",
        )  # fmt: skip
        paths.config.write_text(json.dumps(
            kubelet_config(paths, self.network, free_port(), self.cgroup_root)))  # fmt: skip
        self._spawn("kubelet", kubelet_argv(plane.bin, paths, self.network, self.name))

    def _start_kube_proxy(self, plane: NodeControlPlane) -> None:
        config = self.dir / "kube-proxy.json"
        config.write_text(json.dumps(kube_proxy_config(
            plane.kubeconfig_of(KUBE_PROXY), self.network, self.name, free_port(),
            free_port())))  # fmt: skip
        self._spawn("kube-proxy", [str(plane.bin / "kube-proxy"), f"--config={config}"])

    def import_images(self, archives: list[Path]) -> None:
        """Images a pod of ours runs, imported where the kubelet finds them (containerd's
        ``k8s.io`` namespace): a node here can't pull. Image GC never removes them: its
        high threshold is 100% (``kubelet_config``)."""
        for archive in archives:
            ctr(self.runtime_root, "images", "import", str(archive))

    def kube_proxy_synced(self) -> bool:
        """kube-proxy has written its rules for the ``kubernetes`` Service, so pods that
        start now reach the API server through it."""
        nat = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                             check=False).stdout  # fmt: skip
        return f"-d {self.network.kubernetes_service_ip}/32" in nat

    def _wait_node_ready(self, plane: NodeControlPlane, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self.procs):
                raise ServerUnavailable(f"a node process exited: {self.logs()}")
            if self.ready_condition(plane).get("status") == "True" and self.kube_proxy_synced():
                return
            time.sleep(0.2)
        raise ServerUnavailable(
            f"node {self.name} not Ready (or kube-proxy not synced) in {timeout}s: {self.logs()}")  # fmt: skip

    def ready_condition(self, plane: NodeControlPlane) -> dict[str, Any]:
        """The node's Ready condition as the API server has it ({} before it registers)."""
        out = plane.kubectl("get", "node", self.name, "-o", "json", check=False)
        if not out.lstrip().startswith("{"):
            return {}
        conditions = json.loads(out)["status"].get("conditions", [])
        return next((c for c in conditions if c["type"] == "Ready"), {})

    # -- stop ---------------------------------------------------------------------------

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        if self.plane is not None:
            self.plane.stop_controllers()
            self._delete_pods(self.plane, 30)
        for proc in reversed(self.procs):  # kube-proxy, the kubelet, then containerd
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
        self.procs.clear()
        kill_cgroup_tree(self.cgroup_root)  # what the kubelet had not stopped
        for pid in shim_pids(socket_path(self.runtime_root)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        unmount_new(self.host_before, self.dir)
        delete_bridge(self.network)
        restore_host(self.host_before)
        super().stop()
        if self.plane is not None:
            self.plane.stop()
            self.plane = None
        self.lock.release()

    def _delete_pods(self, plane: NodeControlPlane, timeout: float) -> None:
        """Every pod deleted at once, and the kubelet left to stop their containers and
        sandboxes as a node does (the network torn down through the CNI plugin)."""
        plane.kubectl("delete", "pods", "--all", "--all-namespaces", "--force",
                      "--grace-period=0", "--wait=false", check=False)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not running_tasks(self.runtime_root):
                    return
            except (RuntimeError, subprocess.TimeoutExpired):
                return  # containerd is not up: there is nothing to wait for
            time.sleep(0.2)
