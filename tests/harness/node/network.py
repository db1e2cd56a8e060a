"""The node's network: a bridge of its own whose gateway address is the node's address.

Pods hang off the bridge (the bridge CNI plugin adds a veth per pod); the bridge's
gateway is on the host, so the API server, the kubelet and the test's own servers bind
to it and pods reach them without forwarding or masquerade. Nothing is fixed: the pod
and Service ranges are /24s drawn from 10.0.0.0/8 that no route on the machine
overlaps, and the bridge's name carries a random suffix.
"""

from __future__ import annotations

import ipaddress
import json
import random
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRIVATE = ipaddress.ip_network("10.0.0.0/8")


@dataclass(frozen=True)
class NodeNetwork:
    bridge: str
    pod_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network

    @property
    def gateway(self) -> str:
        """The bridge's address on the host: the node's address, and the API server's."""
        return str(self.pod_cidr.network_address + 1)

    @property
    def kubernetes_service_ip(self) -> str:
        """The ``kubernetes`` Service's ClusterIP: the first of the Service range."""
        return str(self.service_cidr.network_address + 1)


def choose_network(taken: list[ipaddress.IPv4Network], rng: random.Random) -> NodeNetwork:
    """Two /24s in 10.0.0.0/8 that overlap nothing in ``taken`` nor each other."""
    chosen: list[ipaddress.IPv4Network] = []
    while len(chosen) < 2:
        candidate = ipaddress.IPv4Network(f"10.{rng.randrange(256)}.{rng.randrange(256)}.0/24")
        if not any(candidate.overlaps(n) for n in [*taken, *chosen]):
            chosen.append(candidate)
    return NodeNetwork(f"stn{secrets.token_hex(4)}", chosen[0], chosen[1])


def cni_config(network: NodeNetwork, ipam_dir: Path) -> dict[str, Any]:
    """The bridge plugin's configuration: the bridge is the pods' gateway, and host-local
    IPAM keeps its leases in ``ipam_dir`` (the node's, not /var/lib/cni)."""
    return {
        "cniVersion": "0.4.0",
        "name": network.bridge,
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": str(network.pod_cidr), "gateway": network.gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "loopback"},
        ],
    }


def routed_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network a route or an address on this machine already uses."""
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True,
                         text=True, check=True)  # fmt: skip
    taken = []
    for route in json.loads(out.stdout):
        dst = route.get("dst", "")
        if dst and dst != "default":
            taken.append(ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False))
    return taken


def create_bridge(network: NodeNetwork) -> None:
    """The bridge, up, with the gateway address: there before the API server binds to it."""
    prefix = network.pod_cidr.prefixlen
    for argv in (["ip", "link", "add", network.bridge, "type", "bridge"],
                 ["ip", "addr", "add", f"{network.gateway}/{prefix}", "dev", network.bridge],
                 ["ip", "link", "set", network.bridge, "up"]):  # fmt: skip
        subprocess.run(argv, capture_output=True, text=True, check=True)


def delete_bridge(network: NodeNetwork) -> None:
    subprocess.run(["ip", "link", "del", network.bridge], capture_output=True, check=False)
