"""The retention CronJob: ``stratum-writer retain`` on the pool's database, on a schedule.

A CronJob rather than a timer in each writer: retention is one job per database, not
one per pod; it runs whether or not the proxies do; ``concurrencyPolicy: Forbid`` and
the writer's own lock keep it to one run at a time; and each run leaves a Job whose
termination message is its report (what was removed, the oldest day kept), which the
operator reads into the pool's status. A failed run stays as evidence.

SQLite is the exception: its database is a file in the proxy pod, which no other pod
can open, so there the writer retains on its own timer (``writer.json``).
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.jobs import writer_database_job
from stratum_operator.builders.pod import TERMINATION_LOG
from stratum_operator.spec import StratumPoolSpec

COMPONENT = "retention"
RUN_DEADLINE_S = 3600  # a run that takes an hour is stuck; the next one starts afresh
_HISTORY = 3  # runs of each outcome kept: the last reports, the last failures


def retention_args(spec: StratumPoolSpec) -> list[str]:
    days = spec.retention
    return ["--share-days", str(days.share_days), "--rollup-days", str(days.rollup_days)]


def build_retention_cronjob(
    name: str, namespace: str, spec: StratumPoolSpec
) -> dict[str, Any] | None:
    """None when retention is off, or the database is SQLite (the writer retains)."""
    secret = spec.persistence.retention_secret
    if not spec.retention.enabled or spec.persistence.backend == "sqlite" or secret is None:
        return None
    job = writer_database_job(
        naming.retention_name(name), namespace, name, COMPONENT, spec, secret,
        container="retain",
        command=["retain", *retention_args(spec), "--summary-file", TERMINATION_LOG],
        backoff_limit=2,  # the next scheduled run is the real retry
        deadline_s=RUN_DEADLINE_S,
    )  # fmt: skip
    job["spec"].pop("ttlSecondsAfterFinished")  # the CronJob's history limits keep them
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": naming.metadata(naming.retention_name(name), namespace, name, COMPONENT),
        "spec": {
            "schedule": spec.retention.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": _HISTORY,
            "failedJobsHistoryLimit": _HISTORY,
            "jobTemplate": {
                "metadata": {"labels": naming.labels(name, COMPONENT)},
                "spec": job["spec"],
            },
        },
    }
