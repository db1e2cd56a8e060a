"""What the retention CronJob's runs said, in the pool's status and the metrics.

Each run's report is its container's termination message (``stratum-writer retain
--summary-file /dev/termination-log``): the oldest day kept, rows removed by table,
partitions dropped. The newest successful run becomes ``status.retention``; every run's
removals are counted once into ``stratum_operator_retention_removed_rows_total``; a
failed run is a Warning Event, once, quoting its last words (the Job is kept as
evidence by the CronJob's history).
"""

from __future__ import annotations

import json
from typing import Any

from stratum_operator import job_status, metrics
from stratum_operator.builders import naming
from stratum_operator.builders.retention import COMPONENT
from stratum_operator.job_status import JobState
from stratum_operator.k8s import fetching
from stratum_operator.outcome import Outcome
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.vocabulary import Reason


def report_of(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The JSON report a successful run left as its termination message."""
    for pod in job_status.newest_first(pods):
        for _, terminated in job_status.terminations(pod):
            if terminated.get("exitCode") == 0:
                try:
                    found: dict[str, Any] = json.loads(terminated.get("message") or "")
                except ValueError:
                    continue
                return found
    return None


def retention_status(report: dict[str, Any], finished: str) -> dict[str, Any]:
    """status.retention from a run's report: the oldest day kept is the share cutoff."""
    status = {
        "oldestRetainedDay": report.get("share_cutoff"),
        "oldestRollupDay": report.get("rollup_cutoff"),
        "oldestShare": report.get("oldest_share"),
        "lastRun": finished,
        "removed": dict(report.get("removed") or {}),
        "partitionsDropped": len(report.get("partitions_dropped") or []),
    }
    return {k: v for k, v in status.items() if v is not None}


async def report_retention(name: str, namespace: str, memo: PoolMemory, out: Outcome) -> None:
    """Reads each finished run once (its pods, then never again); the CronJob's history
    limits bound how many there are."""
    jobs = await fetching.list_objects(
        "batch/v1", "Job", namespace, {f"{naming.GROUP}/pool": name,
                                       "app.kubernetes.io/component": COMPONENT})  # fmt: skip
    read = memo.retention_runs
    for job in jobs:
        uid, job_name = job["metadata"]["uid"], job["metadata"]["name"]
        state = job_status.state_of(job)
        if state is JobState.RUNNING or uid in read:
            continue
        pods = await job_status.pods_of(namespace, job_name)
        if state is JobState.FAILED:
            said = job_status.last_words(pods) or job_status.failure_condition(job)
            out.event(Reason.RETENTION_FAILED, f"retention run {job_name} failed: {said}; "
                      f"kubectl logs job/{job_name}", warning=True)  # fmt: skip
            read[uid] = None
            continue
        report = report_of(pods)
        read[uid] = (job.get("status", {}).get("completionTime", ""), report or {})
        for table, rows in ((report or {}).get("removed") or {}).items():
            metrics.RETENTION_REMOVED.labels(namespace, name, table).inc(rows)
    listed = {job["metadata"]["uid"] for job in jobs}
    for uid in set(read) - listed:  # gone with the CronJob's history: forget, keep memory flat
        del read[uid]
    runs = sorted(run for run in read.values() if run is not None and run[1])
    if runs:
        finished, report = runs[-1]
        out.status["retention"] = retention_status(report, finished)
