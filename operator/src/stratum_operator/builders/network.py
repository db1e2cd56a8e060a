"""What miners connect to, and how much of it may be taken away at once.

The miners' Service is shaped as CloudNativePG's Pooler shapes its own: the pool's
``proxy.serviceTemplate`` (labels, annotations: cloud load balancers are configured
through them; a ServiceSpec's fields) is merged over the defaults, and what makes it
the pool's stays the operator's: the selector, the ports, the type (``proxy.serviceType``)
and the labels it is found by. Being server-side applied, all of it is kept: a hand
edit of a field the template sets comes back; fields nobody set stay whoever's they are.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.spec import StratumPoolSpec


def build_service(name: str, namespace: str, spec: StratumPoolSpec) -> dict[str, Any]:
    proxy = spec.proxy
    template = proxy.service_template
    defaults: dict[str, Any] = {}
    if proxy.service_type != "ClusterIP":
        # Keep the miner's source address: the proxy's per-IP limits and logs need it.
        defaults["externalTrafficPolicy"] = "Local"
    port: dict[str, Any] = {
        "name": "stratum",
        "port": proxy.port,
        "targetPort": "stratum",
        "protocol": "TCP",
    }
    if proxy.node_port is not None:
        port["nodePort"] = proxy.node_port
    service = {
        **defaults,
        **template.spec,
        "type": proxy.service_type,
        "selector": naming.selector(name, "proxy"),
        "ports": [port],
    }
    metadata = naming.metadata(naming.service_name(name), namespace, name, "proxy")
    metadata["labels"] = {**template.metadata.labels, **metadata["labels"]}
    if template.metadata.annotations:
        metadata["annotations"] = dict(template.metadata.annotations)
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": service}


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
    """``proxy.podDisruptionBudget``; unset, one pod at a time, whatever the size: its
    miners move to the others."""
    budget = spec.proxy.pod_disruption_budget
    allowed: dict[str, int | str] = {"maxUnavailable": 1}
    if budget.min_available is not None:
        allowed = {"minAvailable": budget.min_available}
    elif budget.max_unavailable is not None:
        allowed = {"maxUnavailable": budget.max_unavailable}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": naming.metadata(naming.pdb_name(name), namespace, name, "proxy"),
        "spec": {**allowed, "selector": {"matchLabels": naming.selector(name, "proxy")}},
    }
