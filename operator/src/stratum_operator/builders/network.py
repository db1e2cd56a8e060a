"""What miners connect to, and how much of it may be taken away at once."""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.spec import StratumPoolSpec


def build_service(name: str, namespace: str, spec: StratumPoolSpec) -> dict[str, Any]:
    service: dict[str, Any] = {
        "type": spec.proxy.service_type,
        "selector": naming.selector(name, "proxy"),
        "ports": [
            {"name": "stratum", "port": spec.proxy.port, "targetPort": "stratum", "protocol": "TCP"}
        ],
    }
    if spec.proxy.service_type != "ClusterIP":
        # Keep the miner's source address: the proxy's per-IP limits and logs need it.
        service["externalTrafficPolicy"] = "Local"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": naming.metadata(naming.service_name(name), namespace, name, "proxy"),
        "spec": service,
    }


def build_pods_service(name: str, namespace: str, spec: StratumPoolSpec) -> dict[str, Any]:
    """The StatefulSet's governing Service: headless, a stable DNS name per proxy pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": naming.metadata(naming.pods_service_name(name), namespace, name, "proxy"),
        "spec": {
            "clusterIP": "None",
            "selector": naming.selector(name, "proxy"),
            "publishNotReadyAddresses": True,
            "ports": [{"name": "proxy-metrics", "port": spec.proxy.metrics_port}],
        },
    }


def build_pdb(name: str, namespace: str, spec: StratumPoolSpec) -> dict[str, Any]:
    del spec  # one pod at a time, whatever the size: its miners move to the others
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": naming.metadata(naming.pdb_name(name), namespace, name, "proxy"),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": naming.selector(name, "proxy")}},
    }
