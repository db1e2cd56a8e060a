"""The ConfigMap both containers read: the proxy's and the writer's settings files.

Credentials are never in it: the database URL is a mounted Secret file, the upstream
account comes from Secret-backed environment variables.
"""

from __future__ import annotations

import json
from typing import Any

from stratum_operator.builders import naming
from stratum_operator.spec import TLS_KEYS, StratumPoolSpec

SPOOL_DIR = "/var/spool/stratum"
CONFIG_DIR = "/etc/stratum"
DATABASE_URL_FILE = "/etc/stratum/database/url"
WORKERS_FILE = "/etc/podinfo/writer-workers"
TLS_DIR = "/etc/stratum/tls"
SQLITE_URL = f"sqlite:///{SPOOL_DIR}/shares.db"  # local runs: beside the spool, per pod
# the proxy serves its metrics and the writer's together here (sharelog.pod_metrics.PATH)
POD_METRICS_PATH = "/metrics/pod"


def proxy_settings(name: str, spec: StratumPoolSpec) -> dict[str, Any]:
    proxy = spec.proxy
    settings: dict[str, Any] = {
        "pool": name,
        "listen": f"0.0.0.0:{proxy.port}",
        "metrics_listen": f"0.0.0.0:{proxy.metrics_port}",
        # the writer's metrics beside the proxy's at POD_METRICS_PATH, for annotation scrapers
        "sidecar_metrics": {"writer": f"127.0.0.1:{spec.writer.metrics_port}"},
        "upstreams": spec.upstreams,
        "routes": spec.routes,
        "local_reject": proxy.local_reject,
        "submit_timeout_s": proxy.submit_timeout_seconds,
        "max_connections": proxy.max_connections,
        "max_submits_per_s": proxy.max_submits_per_second,
        "submit_rate_window_s": proxy.submit_rate_window_seconds,
        "max_new_connections_per_ip_per_s": proxy.max_new_connections_per_address_per_second,
        "spool_dir": SPOOL_DIR,
        # the limit counts the writer's dead letters too; the tenth left is the checkpoint's
        # and a segment's slack
        "spool_max_bytes": quantity_bytes(spec.spool.size) * 9 // 10,
        "shutdown_grace_s": max(spec.pod_template.termination_grace_period_seconds - 15, 1),
    }
    if spec.upstream_credentials is not None:  # the account itself comes from the Secret
        settings["upstream_worker_separator"] = spec.upstream_credentials.worker_separator
    if proxy.tls_secret:
        cert, key = TLS_KEYS
        settings["tls_cert_file"] = f"{TLS_DIR}/{cert}"
        settings["tls_key_file"] = f"{TLS_DIR}/{key}"
    return settings


def writer_settings(spec: StratumPoolSpec) -> dict[str, Any]:
    writer = spec.writer
    settings: dict[str, Any] = {
        "spool_dir": SPOOL_DIR,
        "database_url_file": DATABASE_URL_FILE if spec.persistence.database_url_secret else None,
        "batch_size": spec.persistence.batch_size,
        "batch_timeout_ms": spec.persistence.batch_timeout_ms,
        "workers": writer.min_workers,
        "max_workers": writer.max_workers,
        "workers_file": WORKERS_FILE,
        "listen": f"0.0.0.0:{writer.metrics_port}",
        # the writer drains before the proxy's grace period ends the pod
        "drain_timeout_s": max(spec.pod_template.termination_grace_period_seconds - 5, 1),
    }
    if spec.spool.dead_letter_limit is not None:  # else the writer's own default
        settings["dead_letter_max_bytes"] = quantity_bytes(spec.spool.dead_letter_limit)
    if spec.persistence.backend == "vitess" and spec.vitess is not None:
        settings["vitess_shards"] = spec.vitess.shards  # one transaction per shard
    if spec.persistence.backend == "sqlite" and spec.retention.enabled:
        # its database is the pod's own file: the writer retains it (builders/retention.py)
        settings["retention_share_days"] = spec.retention.share_days
        settings["retention_rollup_days"] = spec.retention.rollup_days
    return settings


def build_configmap(name: str, namespace: str, spec: StratumPoolSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": naming.metadata(naming.config_name(name), namespace, name, "config"),
        "data": {
            "proxy.json": json.dumps(proxy_settings(name, spec), indent=2, sort_keys=True),
            "writer.json": json.dumps(writer_settings(spec), indent=2, sort_keys=True),
        },
    }


_UNITS = {
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes quantity ("1Gi", "500M", "1048576") in bytes."""
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * _UNITS[suffix])
    return int(quantity)
