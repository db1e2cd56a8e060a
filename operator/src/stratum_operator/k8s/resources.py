"""Where each kind we touch lives in the API: (group/version path, plural)."""

from __future__ import annotations

_KINDS = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("v1", "Service"): "services",
    ("v1", "Pod"): "pods",
    ("v1", "Event"): "events",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("apps/v1", "Deployment"): "deployments",
    ("apps/v1", "StatefulSet"): "statefulsets",
    ("batch/v1", "Job"): "jobs",
    ("batch/v1", "CronJob"): "cronjobs",
    ("policy/v1", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("stratum.io/v1alpha1", "StratumPool"): "stratumpools",
    ("planetscale.com/v2", "VitessCluster"): "vitessclusters",
}


def path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    plural = _KINDS[(api_version, kind)]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    url = f"{base}/namespaces/{namespace}/{plural}"
    return f"{url}/{name}" if name else url


def path_of(obj: dict[str, object]) -> str:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return path(str(obj["apiVersion"]), str(obj["kind"]), meta["namespace"], meta["name"])


def label_selector(labels: dict[str, str]) -> str:
    """A label selector as the API takes it in a query, and as ``/scale`` reports it."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
