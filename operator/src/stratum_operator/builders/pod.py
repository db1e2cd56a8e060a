"""Every fact about the pods we run, once: who they run as, what they mount and where,
how they are probed. The proxy StatefulSet, the drain Jobs, the migration and keyspace
Jobs all build their pods from here, so a path the writer reads is the same in each.

Where they run comes from the pool's ``podTemplate``: the proxy pods take all of it (and
spread across nodes unless told otherwise); every Job's pod takes what lets it reach the
same nodes (``job_scheduling``).

Every pod is locked down the way the restricted PodSecurity profile asks (non-root
numeric user, read-only root filesystem, no capabilities, RuntimeDefault seccomp); the
only writable paths are the spool and a small in-memory /tmp.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.config import CONFIG_DIR, DATABASE_URL_FILE, SPOOL_DIR, TLS_DIR
from stratum_operator.spec import SecretKeyRef, StratumPoolSpec

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

SPOOL_VOLUME = "spool"  # also the claim template's name: claims are spool-<pod>
CONFIG_MOUNT = {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}
DATABASE_MOUNT = {
    "name": "database",
    "mountPath": DATABASE_URL_FILE.rsplit("/", 1)[0],
    "readOnly": True,
}
SPOOL_MOUNT = {"name": SPOOL_VOLUME, "mountPath": SPOOL_DIR}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - an emptyDir, not the host's
PODINFO_MOUNT = {"name": "podinfo", "mountPath": "/etc/podinfo", "readOnly": True}
TLS_MOUNT = {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}
TERMINATION_LOG = "/dev/termination-log"  # the kubelet's: what a drain or retention run reports


def probes(port: str) -> dict[str, Any]:
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


HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


def proxy_scheduling(pool: str, spec: StratumPoolSpec) -> dict[str, Any]:
    """The proxy pods' scheduling: all of ``podTemplate``'s, spread softly across nodes
    by default (two replicas on one node go down together); a
    ``topologySpreadConstraints`` of the pool's own (``[]``: none) replaces the default."""
    template = spec.pod_template
    spread = template.topology_spread_constraints
    if spread is None:
        spread = [{
            "maxSkew": 1,
            "topologyKey": HOSTNAME_TOPOLOGY,
            "whenUnsatisfiable": "ScheduleAnyway",  # softly: one node still runs them all
            "labelSelector": {"matchLabels": naming.selector(pool, "proxy")},
        }]  # fmt: skip
    return _present({
        **job_scheduling(spec),
        "affinity": template.affinity,
        "topologySpreadConstraints": spread,
    })  # fmt: skip


def job_scheduling(spec: StratumPoolSpec) -> dict[str, Any]:
    """A Job's pod: the pool's nodeSelector, tolerations, node affinity, priority and pull
    secrets, so it lands where the proxies may (a tainted node, a labelled pool of them;
    a drain pod then mounts its claim where the volume is). Pod (anti-)affinity and spread
    constraints say where proxies sit beside other pods: they could keep a drain off the
    one node its local volume is on, so a Job never takes them."""
    template = spec.pod_template
    node_affinity = (template.affinity or {}).get("nodeAffinity")
    return _present({
        "nodeSelector": template.node_selector,
        "tolerations": template.tolerations,
        "affinity": {"nodeAffinity": node_affinity} if node_affinity else None,
        "priorityClassName": template.priority_class_name,
        "imagePullSecrets": template.image_pull_secrets,
    })  # fmt: skip


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value}


def pod_spec(
    containers: list[dict[str, Any]], volumes: list[dict[str, Any]], spec: StratumPoolSpec
) -> dict[str, Any]:
    """What every pod of ours has: the security context, the pull policy, no API token,
    no service links."""
    for container in containers:
        container.setdefault("securityContext", CONTAINER_SECURITY)
        if spec.image_pull_policy is not None:
            container["imagePullPolicy"] = spec.image_pull_policy
    return {
        "containers": containers,
        "volumes": volumes,
        "automountServiceAccountToken": False,  # no container of ours talks to the API
        "enableServiceLinks": False,
        "securityContext": POD_SECURITY,
    }


def config_volume(pool: str) -> dict[str, Any]:
    return {"name": "config", "configMap": {"name": naming.config_name(pool)}}


def database_volume(secret: SecretKeyRef) -> dict[str, Any]:
    """Only the URL's key, as the file the writer reads; readable by the pod's group."""
    return {
        "name": "database",
        "secret": {
            "secretName": secret.name,
            "items": [{"key": secret.key, "path": "url"}],
            "defaultMode": 0o440,
        },
    }


def tmp_volume(size: str) -> dict[str, Any]:
    """The one writable path besides the spool, in memory, bounded."""
    return {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": size}}


def podinfo_volume() -> dict[str, Any]:
    """The writer's worker count, mirrored from a pod annotation the operator sets."""
    field = f"metadata.annotations['{naming.WORKERS_ANNOTATION}']"
    return {
        "name": "podinfo",
        "downwardAPI": {"items": [{"path": "writer-workers", "fieldRef": {"fieldPath": field}}]},
    }


def tls_volume(secret: str) -> dict[str, Any]:
    return {"name": "tls", "secret": {"secretName": secret, "defaultMode": 0o440}}


def spool_claim_template(pool: str, spec: StratumPoolSpec) -> dict[str, Any]:
    """The claim each proxy pod gets (``spool-<pod>``); it outlives the pod."""
    claim: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": spec.spool.size}},
    }
    if spec.spool.storage_class_name:
        claim["storageClassName"] = spec.spool.storage_class_name
    return {
        "metadata": {
            "name": SPOOL_VOLUME,
            "labels": {**naming.labels(pool, "proxy"), **naming.claim_selector(pool)},
        },
        "spec": claim,
    }


def ephemeral_spool_volume(spec: StratumPoolSpec) -> dict[str, Any]:
    """``spool.ephemeral``: the spool dies with its pod (and the pool says so)."""
    return {"name": SPOOL_VOLUME, "emptyDir": {"sizeLimit": spec.spool.size}}


def claimed_spool_volume(claim: str) -> dict[str, Any]:
    return {"name": SPOOL_VOLUME, "persistentVolumeClaim": {"claimName": claim}}


def writer_database(spec: StratumPoolSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts) that give a writer its database URL; none for SQLite."""
    secret = spec.persistence.database_url_secret
    if secret is None:
        return [], []
    return [database_volume(secret)], [DATABASE_MOUNT]
