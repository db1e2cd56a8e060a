"""The proxy StatefulSet: proxy and writer containers over one spool, on a claim per pod.

Each pod's spool is a claim from the StatefulSet's template (``spool-<pool>-proxy-<n>``)
that outlives the pod: a replaced pod (rollout, eviction, node loss) mounts the same
claim and its writer resumes from the checkpoint. Kubernetes never deletes a claim
(``persistentVolumeClaimRetentionPolicy`` Retain, on scale-in and on delete); the
operator does, and only after a drain Job proved it empty (``claims.py``). With
``spool.ephemeral`` the spool is an emptyDir instead, and the pool says that its shares
are lost with its pods.

The writer learns its worker count from a downward-API file mirroring a pod annotation,
so the operator can change it without a restart.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.config import (
    CONFIG_DIR,
    POD_METRICS_PATH,
    SQLITE_URL,
    build_configmap,
)
from stratum_operator.builders.pod import (
    CONFIG_MOUNT,
    PODINFO_MOUNT,
    SPOOL_MOUNT,
    TLS_MOUNT,
    TMP_MOUNT,
    config_volume,
    ephemeral_spool_volume,
    pod_spec,
    podinfo_volume,
    probes,
    proxy_scheduling,
    spool_claim_template,
    tls_volume,
    tmp_volume,
    writer_database,
)
from stratum_operator.spec import StratumPoolSpec


def _proxy_container(spec: StratumPoolSpec) -> dict[str, Any]:
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    creds = spec.upstream_credentials
    if creds is not None:
        for var, key in (("ACCOUNT", creds.account_key), ("PASSWORD", creds.password_key)):
            env.append(
                {
                    "name": f"STRATUM_PROXY_UPSTREAM_{var}",
                    "valueFrom": {"secretKeyRef": {"name": creds.name, "key": key}},
                }
            )
    mounts = [CONFIG_MOUNT, SPOOL_MOUNT, TMP_MOUNT]
    if spec.proxy.tls_secret:
        mounts.append(TLS_MOUNT)
    container = {
        "name": "proxy",
        "image": spec.proxy_image,
        "args": ["--config", f"{CONFIG_DIR}/proxy.json"],
        "ports": [
            {"name": "stratum", "containerPort": spec.proxy.port, "protocol": "TCP"},
            {"name": "proxy-metrics", "containerPort": spec.proxy.metrics_port},
        ],
        "env": env,
        "volumeMounts": mounts,
        **probes("proxy-metrics"),
    }
    if spec.proxy.resources:
        container["resources"] = spec.proxy.resources
    return container


def _writer_container(spec: StratumPoolSpec) -> dict[str, Any]:
    _, database_mounts = writer_database(spec)
    mounts = [CONFIG_MOUNT, SPOOL_MOUNT, TMP_MOUNT, PODINFO_MOUNT, *database_mounts]
    env: list[dict[str, Any]] = []
    if not database_mounts:
        env.append({"name": "STRATUM_DATABASE_URL", "value": SQLITE_URL})
    args = ["--config", f"{CONFIG_DIR}/writer.json", "run"]
    if spec.persistence.backend == "sqlite":
        args.append("--migrate")  # a per-pod file: no migration Job can reach it
    container: dict[str, Any] = {
        "name": "writer",
        "image": spec.writer_image,
        "args": args,
        "ports": [{"name": "writer-metrics", "containerPort": spec.writer.metrics_port}],
        "env": env,
        "volumeMounts": mounts,
        **probes("writer-metrics"),
    }
    if spec.writer.resources:
        container["resources"] = spec.writer.resources
    return container


def _volumes(spec: StratumPoolSpec, name: str) -> list[dict[str, Any]]:
    database_volumes, _ = writer_database(spec)
    volumes = [config_volume(name), tmp_volume("64Mi"), podinfo_volume(), *database_volumes]
    if spec.spool.ephemeral:
        volumes.append(ephemeral_spool_volume(spec))
    if spec.proxy.tls_secret:
        volumes.append(tls_volume(spec.proxy.tls_secret))
    return volumes


def config_hash(name: str, namespace: str, spec: StratumPoolSpec) -> str:
    """What the pods were configured from; part of the pod template, so a change rolls."""
    return naming.content_hash(build_configmap(name, namespace, spec)["data"])


def build_statefulset(name: str, namespace: str, spec: StratumPoolSpec) -> dict[str, Any]:
    template = spec.pod_template
    annotations = {
        **(template.annotations or {}),
        naming.CONFIG_HASH_ANNOTATION: config_hash(name, namespace, spec),
        naming.WORKERS_ANNOTATION: str(spec.writer.min_workers),
        # for scrapers that read these annotations: one port, one path, the whole pod
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.proxy.metrics_port),
        "prometheus.io/path": POD_METRICS_PATH,
    }
    containers = [_proxy_container(spec), _writer_container(spec)]
    pod = pod_spec(containers, _volumes(spec, name), spec)
    pod["terminationGracePeriodSeconds"] = template.termination_grace_period_seconds
    pod.update(proxy_scheduling(name, spec))
    sts_spec: dict[str, Any] = {
        "replicas": spec.proxy.replicas,
        "serviceName": naming.pods_service_name(name),
        "selector": {"matchLabels": naming.selector(name, "proxy")},
        # Pods start and stop together (a pod's spool is its own: no ordering between
        # them matters); a rollout still replaces one pod at a time, each miner sent
        # client.reconnect first.
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "template": {
            "metadata": {"labels": naming.labels(name, "proxy"), "annotations": annotations},
            "spec": pod,
        },
    }
    if not spec.spool.ephemeral:
        sts_spec["volumeClaimTemplates"] = [spool_claim_template(name, spec)]
        # Kubernetes never deletes a spool claim: the operator does, once it is proven empty
        sts_spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Retain",
            "whenScaled": "Retain",
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": naming.metadata(naming.proxy_name(name), namespace, name, "proxy"),
        "spec": sts_spec,
    }
