"""The node's cluster DNS: CoreDNS on the host, at the node's address (pure: settings
in, the Corefile and argv out).

CoreDNS (built by ``tools/build-go-tools.sh coredns``, pinned, with only the plugins
used here) answers for ``cluster.local`` from the node's API server, as a cluster's
DNS does: ``<service>.<namespace>.svc`` is the Service's ClusterIP (kube-proxy takes it
from there), a headless Service's names are its pods. It listens on the bridge's
gateway, port 53 (resolv.conf has no port), which every pod routes to without
forwarding; the kubelet gives pods that address as their nameserver (``clusterDNS``).
Names outside the cluster get no answer: the rig reaches nothing beyond this machine.
"""

from __future__ import annotations

from pathlib import Path

from harness.node.network import NodeNetwork

CLUSTER_DOMAIN = "cluster.local"
DNS_PORT = 53


def corefile(network: NodeNetwork, kubeconfig: Path, ready_port: int) -> str:
    return (
        f".:{DNS_PORT} {{\n"
        f"    bind {network.gateway}\n"
        "    errors\n"
        f"    ready 127.0.0.1:{ready_port}\n"
        f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        f"        kubeconfig {kubeconfig}\n"
        "        pods insecure\n"
        "        fallthrough in-addr.arpa ip6.arpa\n"
        "    }\n"
        "    cache 5\n"
        "}\n"
    )


def coredns_argv(bin_dir: Path, corefile_path: Path) -> list[str]:
    return [str(bin_dir / "coredns"), "-conf", str(corefile_path)]
