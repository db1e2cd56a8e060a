"""The kubelet's and kube-proxy's configurations (pure: settings in, documents out).

The kubelet: cgroupfs under a cgroup root of its own (cgroup v1 here, allowed with
``failCgroupV1: false``), swap tolerated, and thresholds set so it never evicts a pod
nor collects an image: the node's images are imported, never pulled, and could not
come back. Its server takes the API server's client certificate and asks the API
server (webhook) who may read logs or exec. Every port is a free one.

kube-proxy: iptables mode (the nf_tables variant of iptables here), changing no sysctl
of its own: no localhost NodePorts (route_localnet), conntrack limits left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.node.dns import CLUSTER_DOMAIN
from harness.node.network import NodeNetwork


@dataclass(frozen=True)
class KubeletPaths:
    root: Path  # --root-dir
    config: Path
    kubeconfig: Path
    client_ca: Path  # the CA of the API server's client certificate
    runtime_socket: Path
    pod_logs: Path
    volume_plugins: Path


def kubelet_config(paths: KubeletPaths, network: NodeNetwork, port: int,
                   cgroup_root: str) -> dict[str, Any]:  # fmt: skip
    endpoint = f"unix://{paths.runtime_socket}"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": network.gateway,
        "port": port,
        "readOnlyPort": 0,
        "healthzPort": 0,
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(paths.client_ca)}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failCgroupV1": False,
        "failSwapOn": False,
        "containerRuntimeEndpoint": endpoint,
        "imageServiceEndpoint": endpoint,
        "podLogsDirectory": str(paths.pod_logs),
        "volumePluginDir": str(paths.volume_plugins),
        "podCIDR": str(network.pod_cidr),
        "clusterDNS": [network.gateway],  # CoreDNS on the host (harness.node.dns)
        "clusterDomain": CLUSTER_DOMAIN,
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                         "nodefs.inodesFree": "1%", "imagefs.available": "1%",
                         "imagefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "shutdownGracePeriod": "0s",
        "registerNode": True,
    }  # fmt: skip


def kubelet_argv(bin_dir: Path, paths: KubeletPaths, network: NodeNetwork,
                 node_name: str) -> list[str]:  # fmt: skip
    return [
        str(bin_dir / "kubelet"), f"--config={paths.config}", f"--kubeconfig={paths.kubeconfig}",
        f"--root-dir={paths.root}", f"--hostname-override={node_name}",
        f"--node-ip={network.gateway}",
    ]  # fmt: skip


def kube_proxy_config(kubeconfig: Path, network: NodeNetwork, node_name: str,
                      healthz_port: int, metrics_port: int) -> dict[str, Any]:  # fmt: skip
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "mode": "iptables",
        "clusterCIDR": str(network.pod_cidr),
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "iptables": {"localhostNodePorts": False},
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                      "tcpCloseWaitTimeout": "0s"},
    }  # fmt: skip
