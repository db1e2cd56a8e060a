"""What a Job and its pods say about how it ended, read the same way for every Job we run
(migration, keyspace, drain).

A container's last words are its termination message: what it wrote to
``/dev/termination-log``, or, as our Jobs ask with ``FallbackToLogsOnError``, the tail
of its log when it failed without writing one. That is what a person needs in the
pool's condition when a Job fails, and it stays readable while the Job is kept. They are
read through ``redaction``: whatever a container printed, no database password in it
reaches a condition, an Event or ``kubectl stratum``.
"""

from __future__ import annotations

import enum
from typing import Any

from stratum_operator.k8s import fetching
from stratum_operator.redaction import redact_text

LAST_WORDS_CHARS = 400  # enough for an error line and its context; a condition stays short


class JobState(enum.Enum):
    RUNNING = "Running"
    COMPLETE = "Complete"
    FAILED = "Failed"


def state_of(job: dict[str, Any]) -> JobState:
    for cond in job.get("status", {}).get("conditions", []):
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return JobState(cond["type"])
    return JobState.RUNNING


def failure_condition(job: dict[str, Any]) -> str:
    """The Job controller's own reason for giving up, e.g. ``BackoffLimitExceeded: ...``."""
    for cond in job.get("status", {}).get("conditions", []):
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return f"{cond.get('reason', 'Failed')}: {cond.get('message', '')}".strip(": ")
    return ""


async def pods_of(namespace: str, job: str) -> list[dict[str, Any]]:
    return await fetching.list_objects(
        "v1", "Pod", namespace, {"batch.kubernetes.io/job-name": job}
    )


def newest_first(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True)


def terminations(pod: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(container, its terminated state) for every container of the pod that ended."""
    status = pod.get("status", {})
    ended = []
    for entry in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
        terminated = entry.get("state", {}).get("terminated")
        if terminated:
            ended.append((str(entry.get("name", "")), terminated))
    return ended


def failed_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in newest_first(pods) if p.get("status", {}).get("phase") == "Failed"]


def last_words(pods: list[dict[str, Any]]) -> str | None:
    """The newest failed container's own account of its failure; None when no pod failed
    (or none has said anything yet)."""
    for pod in failed_pods(pods):
        for container, terminated in terminations(pod):
            if terminated.get("exitCode", 0) == 0:
                continue
            said = " ".join(redact_text(terminated.get("message") or "").split())
            code = f"{container} exited {terminated.get('exitCode')}"
            if said:
                return f"{code}: {_tail(said)}"
            return f"{code} ({terminated.get('reason', 'Error')}), with no message"
    return None


def _tail(text: str) -> str:
    return text if len(text) <= LAST_WORDS_CHARS else "…" + text[-LAST_WORDS_CHARS:]
