"""A one-shot Job that must succeed before the pool moves on, tracked across passes.

The schema migration and the Vitess keyspace Job both gate the rollout the same way:
apply the Job, report it running (and what its failed pods said, while the Job
controller retries them), and on success remember it in the status (a Job is named by
what it applies, so success for that name is final).

A failed Job is evidence: it is kept, with its pods and their logs, until a later
attempt succeeds. The pool's condition quotes the failing container's last words. The
next attempt is a new Job (``<name>-2``, ``-3``...), created after a backoff that
doubles per attempt, so a broken database does not become a hot loop of pods; when it
fails too, the attempt before it is deleted: the last failure is always there to read.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from stratum_operator import job_status
from stratum_operator.clock import seconds, timestamp
from stratum_operator.job_status import JobState
from stratum_operator.k8s import applying, deleting, fetching
from stratum_operator.outcome import Outcome
from stratum_operator.vocabulary import ConditionType, Reason

RETRY_BASE_S = 30
RETRY_CAP_S = 1800


@dataclass(frozen=True)
class JobGate:
    status_key: str  # where in status.<key> the Job's progress is kept
    condition: ConditionType  # the condition it drives
    what: str  # how messages name the Job
    running: Reason
    ready: Reason
    failed: Reason
    started: Reason
    succeeded: Reason
    waiting: Reason  # Ready's reason while the gate is shut


SCHEMA = JobGate("schema", ConditionType.SCHEMA_READY, "migration Job", Reason.MIGRATING,
                 Reason.MIGRATED, Reason.MIGRATION_FAILED, Reason.MIGRATION_STARTED,
                 Reason.MIGRATION_SUCCEEDED, Reason.SCHEMA_NOT_READY)  # fmt: skip
KEYSPACE = JobGate("keyspace", ConditionType.KEYSPACE_READY, "keyspace Job",
                   Reason.KEYSPACE_APPLYING, Reason.KEYSPACE_APPLIED, Reason.KEYSPACE_FAILED,
                   Reason.KEYSPACE_STARTED, Reason.KEYSPACE_SUCCEEDED,
                   Reason.KEYSPACE_NOT_READY)  # fmt: skip


def attempt_name(job: str, attempt: int) -> str:
    """The first attempt carries the Job's own name; later ones a suffix."""
    return job if attempt <= 1 else f"{job}-{attempt}"


def retry_delay(attempt: int) -> int:
    return int(min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(attempt - 1, 0)))


async def passed(gate: JobGate, job: dict[str, Any], status: dict[str, Any], out: Outcome) -> bool:
    """True once ``job`` has succeeded; otherwise moves it on by one step and says how."""
    base, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    state = dict(status.get(gate.status_key) or {})
    if state.get("job") != base:
        state = {"job": base, "ready": False, "attempts": 0}
    out.status[gate.status_key] = state
    if state.get("ready"):
        out.condition(gate.condition, True, gate.ready, f"{gate.what} {base} succeeded")
        return True
    out.condition(ConditionType.READY, False, gate.waiting, f"waiting for the {gate.what}")
    attempts = int(state.get("attempts") or 0)
    current = None
    if attempts:
        current = await fetching.get("batch/v1", "Job", namespace, attempt_name(base, attempts))
    if current is not None and job_status.state_of(current) is JobState.FAILED:
        await _record_failure(gate, current, state, out)
        if time.time() < seconds(state.get("retryAt")):
            out.condition(gate.condition, False, gate.failed, _failed_message(state))
            return False
        current = None  # the backoff is over: the next attempt
    if current is None:
        attempts += 1
        attempt = copy.deepcopy(job)
        attempt["metadata"]["name"] = attempt_name(base, attempts)
        current = await applying.apply(attempt)
        state.update(attempts=attempts, current=attempt["metadata"]["name"])
        state.pop("retryAt", None)
        out.event(gate.started, f"{gate.what} {attempt['metadata']['name']} started "
                  f"(attempt {attempts})")  # fmt: skip
    name = current["metadata"]["name"]
    if job_status.state_of(current) is JobState.COMPLETE:
        if state.get("failedJob"):  # the evidence of the last failure is no longer needed
            await deleting.delete("batch/v1", "Job", namespace, state["failedJob"])
        for key in ("failedJob", "lastError", "retryAt"):
            state.pop(key, None)
        state["ready"] = True
        out.condition(gate.condition, True, gate.ready, f"{gate.what} {name} succeeded")
        out.event(gate.succeeded, f"{gate.what} {name} succeeded")
        return True
    message = f"{gate.what} {name} is running"
    pods = await job_status.pods_of(namespace, name)
    failed = job_status.failed_pods(pods)
    if failed:  # the Job controller retries its pods: say what the failed ones said
        message += (f"; {len(failed)} of its pods failed, the Job controller retries. Last: "
                    f"{job_status.last_words(pods)}")  # fmt: skip
    if state.get("lastError"):
        message += f" (the attempt before: {state['lastError']})"
    out.condition(gate.condition, False, gate.running, message)
    return False


async def _record_failure(
    gate: JobGate, job: dict[str, Any], state: dict[str, Any], out: Outcome
) -> None:
    """Once per failed attempt: its last words into the status, an Event, and the
    attempt before it deleted (this one is now the evidence)."""
    name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
    if state.get("failedJob") == name:
        return
    pods = await job_status.pods_of(namespace, name)
    words = job_status.last_words(pods) or job_status.failure_condition(job) or "no reason given"
    delay = retry_delay(int(state.get("attempts") or 1))
    if state.get("failedJob"):
        await deleting.delete("batch/v1", "Job", namespace, state["failedJob"])
    state.update(failedJob=name, lastError=f"{gate.what} {name} failed: {words}",
                 retryAt=timestamp(time.time() + delay))  # fmt: skip
    out.event(gate.failed, f"{state['lastError']}; kept for its logs (kubectl logs job/{name}); "
              f"next attempt in {delay}s", warning=True)  # fmt: skip


def _failed_message(state: dict[str, Any]) -> str:
    return (f"{state['lastError']}; kept for its logs (kubectl logs job/{state['failedJob']}); "
            f"next attempt at {state['retryAt']}")  # fmt: skip
