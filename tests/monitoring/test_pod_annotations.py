"""Scrapers that find pods by their ``prometheus.io/*`` annotations see the whole pod.

A real Prometheus, configured as the community chart's ``kubernetes-pods`` job is,
discovers a pool's pods through the real API server and scrapes what the operator's
annotations name: one port, one path. Behind it run the real proxy (with the settings
the operator put in the pool's ConfigMap) and the real writer, so the writer's queue
and dead letters are scraped too; and a writer that stops answering is a series that
says so, not a silence.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness.databases import free_port
from harness.kubernetes import ControlPlane
from harness.prometheus import PrometheusServer
from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from harness.stratum_pools import ready_pool
from harness.writer import WriterProcess


def annotation_scrape_job(kubeconfig: Path, namespace: str) -> dict[str, Any]:
    """The de-facto standard pod job (prometheus-community's chart), in its essentials."""
    meta = "__meta_kubernetes_pod_"
    return {
        "job_name": "kubernetes-pods",
        "honor_labels": True,
        "kubernetes_sd_configs": [
            {
                "role": "pod",
                "kubeconfig_file": str(kubeconfig),
                "namespaces": {"names": [namespace]},
            }
        ],
        "relabel_configs": [
            {
                "source_labels": [f"{meta}annotation_prometheus_io_scrape"],
                "action": "keep",
                "regex": "true",
            },
            {
                "source_labels": [f"{meta}annotation_prometheus_io_path"],
                "action": "replace",
                "target_label": "__metrics_path__",
                "regex": "(.+)",
            },
            {
                "source_labels": [f"{meta}annotation_prometheus_io_port", f"{meta}ip"],
                "action": "replace",
                "regex": r"(\d+);((([0-9]+?)(\.|$)){4})",
                "replacement": "$2:$1",
                "target_label": "__address__",
            },
            {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
            {"source_labels": [f"{meta}name"], "target_label": "pod"},
            {
                "source_labels": [f"{meta}phase"],
                "regex": "Pending|Succeeded|Failed|Completed",
                "action": "drop",
            },
        ],
    }


def test_annotation_scrapers_see_the_proxy_and_the_writer(
    installed_chart: ControlPlane, ns: str, sim: SimLoop, tmp_path: Path
) -> None:
    cp = installed_chart
    proxy_port, writer_port = free_port(), free_port()
    spec = {"proxy": {"replicas": 1, "metricsPort": proxy_port},
            "writer": {"metricsPort": writer_port}}  # fmt: skip
    (pod,) = ready_pool(cp, "seen", ns, **spec)
    ip = cp.get("pod", pod, ns)["status"]["podIP"]  # type: ignore[index]
    # the proxy runs with the operator's own settings for the pod's sidecars
    configmap = cp.get("configmap", "seen-config", ns)
    assert configmap is not None
    sidecars = json.loads(configmap["data"]["proxy.json"])["sidecar_metrics"]
    assert sidecars == {"writer": f"127.0.0.1:{writer_port}"}
    _, upstream = sim.pool()
    # in the pod both listen on all addresses; here the "pod IP" is loopback for the writer
    proxy = ProxyProcess(tmp_path / "pod", [upstream], host=ip, metrics_port=proxy_port,
                         sidecar_metrics=sidecars).start()  # fmt: skip
    writer = WriterProcess(proxy.spool, f"sqlite:///{tmp_path / 'shares.db'}", host="127.0.0.1",
                           port=writer_port).start()  # fmt: skip
    server = PrometheusServer([annotation_scrape_job(cp.kubeconfig, ns)], [])
    try:
        sim.fleet(proxy.listen_port, miners=3, shares_per_s=10, duration=3).result(timeout=60)
        pod_labels = f'namespace="{ns}",pod="{pod}"'

        def values(expr: str) -> list[float]:
            return [float(s["value"][1]) for s in server.query(expr)]

        stored = f"stratum_writer_inserted_total{{{pod_labels}}}"
        cp.wait("the writer's shares, scraped", lambda: values(stored) and values(stored)[0] > 0,
                60)  # fmt: skip
        for name in ("stratum_proxy_miners", "stratum_proxy_shares_total",
                     "stratum_writer_queue_events", "stratum_writer_dead_letters_total",
                     "stratum_writer_oldest_event_age_seconds"):  # fmt: skip
            assert values(f"{name}{{{pod_labels}}}"), f"{name} is not scraped"
        up = f'stratum_pod_sidecar_up{{{pod_labels},sidecar="writer"}}'
        assert values(up) == [1.0]
        # the writer stops answering: the pod's scrape still works and says so
        writer.kill()
        cp.wait("the writer seen down", lambda: values(up) == [0.0], 30)
        time.sleep(1.5)
        assert values(f"up{{{pod_labels}}}") == [1.0]
        assert values(f"stratum_proxy_miners{{{pod_labels}}}")
    finally:
        server.stop()
        proxy.kill()
        writer.kill()
