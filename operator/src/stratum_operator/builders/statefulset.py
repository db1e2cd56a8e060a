"""The proxy Deployment: proxy and writer containers over one spool volume.

The pod is locked down the way a restricted PodSecurity profile asks (non-root numeric
user, read-only root filesystem, no capabilities, RuntimeDefault seccomp); the only
writable paths are the spool and a small /tmp. The writer learns its worker count
from a downward-API file mirroring a pod annotation, so the operator can change it
without a restart.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.config import (
    CONFIG_DIR,
    SPOOL_DIR,
    SQLITE_URL,
    TLS_DIR,
    build_configmap,
)
from stratum_operator.builders.volumes import (
    CONFIG_MOUNT,
    DATABASE_MOUNT,
    TMP_MOUNT,
    config_volume,
    database_volume,
    tmp_volume,
)
from stratum_operator.spec import StratumPoolSpec

USER_ID = 65532  # the images' numeric non-root user

POD_SECURITY = {  # every pod we run: the restricted Pod Security Standard
    "runAsNonRoot": True,
    "runAsUser": USER_ID,
    "runAsGroup": USER_ID,
    "fsGroup": USER_ID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


def _probes(port: str) -> dict[str, Any]:
    return {
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": port},
            "periodSeconds": 5,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": port},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
    }


def _shared_mounts() -> list[dict[str, Any]]:
    """Both containers: the settings, the spool they share, and a small writable /tmp."""
    return [
        CONFIG_MOUNT,
        {"name": "spool", "mountPath": SPOOL_DIR},
        TMP_MOUNT,
    ]


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
    mounts = _shared_mounts()
    if spec.proxy.tls_secret:
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
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
        "securityContext": CONTAINER_SECURITY,
        **_probes("proxy-metrics"),
    }
    if spec.proxy.resources:
        container["resources"] = spec.proxy.resources
    return container


def _writer_container(spec: StratumPoolSpec) -> dict[str, Any]:
    mounts = [*_shared_mounts(), {"name": "podinfo", "mountPath": "/etc/podinfo", "readOnly": True}]
    env: list[dict[str, Any]] = []
    if spec.persistence.database_url_secret is not None:
        mounts.append(DATABASE_MOUNT)
    else:
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
        "securityContext": CONTAINER_SECURITY,
        **_probes("writer-metrics"),
    }
    if spec.writer.resources:
        container["resources"] = spec.writer.resources
    return container


def _volumes(spec: StratumPoolSpec, name: str) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        config_volume(name),
        {"name": "spool", "emptyDir": {"sizeLimit": spec.persistence.spool_size_limit}},
        tmp_volume("64Mi"),
        {
            "name": "podinfo",
            "downwardAPI": {
                "items": [
                    {
                        "path": "writer-workers",
                        "fieldRef": {
                            "fieldPath": f"metadata.annotations['{naming.WORKERS_ANNOTATION}']"
                        },
                    }
                ]
            },
        },
    ]
    secret = spec.persistence.database_url_secret
    if secret is not None:
        volumes.append(database_volume(secret))
    if spec.proxy.tls_secret:
        volumes.append(
            {"name": "tls", "secret": {"secretName": spec.proxy.tls_secret, "defaultMode": 0o440}}
        )
    return volumes


def config_hash(name: str, namespace: str, spec: StratumPoolSpec) -> str:
    """What the pods were configured from; part of the pod template, so a change rolls."""
    return naming.content_hash(build_configmap(name, namespace, spec)["data"])


def build_deployment(name: str, namespace: str, spec: StratumPoolSpec) -> dict[str, Any]:
    template = spec.pod_template
    annotations = {
        **(template.annotations or {}),
        naming.CONFIG_HASH_ANNOTATION: config_hash(name, namespace, spec),
        naming.WORKERS_ANNOTATION: str(spec.writer.min_workers),
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(spec.proxy.metrics_port),
    }
    pod_spec: dict[str, Any] = {
        "containers": [_proxy_container(spec), _writer_container(spec)],
        "volumes": _volumes(spec, name),
        "terminationGracePeriodSeconds": template.termination_grace_period_seconds,
        "automountServiceAccountToken": False,  # neither container talks to the API
        "enableServiceLinks": False,
        "securityContext": POD_SECURITY,
    }
    for key, value in (
        ("nodeSelector", template.node_selector),
        ("tolerations", template.tolerations),
        ("affinity", template.affinity),
    ):
        if value:
            pod_spec[key] = value
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": naming.metadata(naming.deployment_name(name), namespace, name, "proxy"),
        "spec": {
            "replicas": spec.proxy.replicas,
            "selector": {"matchLabels": naming.selector(name, "proxy")},
            # Miners reconnect to the other pods: never take capacity away during a roll.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": naming.labels(name, "proxy"), "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }
