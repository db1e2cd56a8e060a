"""A one-shot Job that must succeed before the pool moves on, tracked across passes.

The schema migration and the Vitess keyspace Job both gate the rollout the same way:
apply the Job once, report it running, and on success remember it in the status (a
Job is named by what it applies, so success for that name is final). A failed Job is
reported with the Job's own reason, deleted, and re-created after a backoff that
doubles per attempt, so a broken database does not become a hot loop of pods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from stratum_operator.k8s import applying, deleting, fetching

RETRY_BASE_S = 30
RETRY_CAP_S = 1800


class Reporter(Protocol):
    status: dict[str, Any]

    def condition(self, type_: str, status: bool, reason: str, message: str) -> None: ...

    def event(self, reason: str, message: str, *, warning: bool = False) -> None: ...


@dataclass(frozen=True)
class JobGate:
    status_key: str  # where in status.<key> the Job's progress is kept
    condition: str  # the condition it drives
    what: str  # how messages name the Job
    event_prefix: str  # <prefix>Started / Succeeded / Failed
    ready_reason: str
    running_reason: str


SCHEMA = JobGate("schema", "SchemaReady", "migration Job", "Migration", "Migrated", "Migrating")
KEYSPACE = JobGate(
    "keyspace", "KeyspaceReady", "keyspace Job", "Keyspace", "KeyspaceApplied", "Running"
)


async def passed(gate: JobGate, job: dict[str, Any], status: dict[str, Any], out: Reporter) -> bool:
    """True once ``job`` has succeeded; otherwise moves it on by one step and says how."""
    job_name = job["metadata"]["name"]
    namespace = job["metadata"]["namespace"]
    state = dict(status.get(gate.status_key) or {})
    if state.get("job") == job_name and state.get("ready"):
        out.condition(gate.condition, True, gate.ready_reason, f"{gate.what} {job_name} succeeded")
        out.status[gate.status_key] = state
        return True
    if state.get("job") != job_name:
        state = {"job": job_name, "ready": False, "attempts": 0}
    current = await fetching.get("batch/v1", "Job", namespace, job_name)
    if current is None:
        retry_at = state.get("retryAt")
        if retry_at and time.time() < retry_at:
            out.condition(gate.condition, False, f"{gate.event_prefix}Failed", state["lastError"])
            out.status[gate.status_key] = state
            return False
        await applying.apply(job)
        state["attempts"] = int(state.get("attempts", 0)) + 1
        out.event(
            f"{gate.event_prefix}Started",
            f"{gate.what} {job_name} started (attempt {state['attempts']})",
        )
        current = job
    finished = {
        c["type"]: c
        for c in current.get("status", {}).get("conditions", [])
        if c.get("status") == "True"
    }
    if "Complete" in finished:
        state.update(ready=True, retryAt=None, lastError=None)
        out.condition(gate.condition, True, gate.ready_reason, f"{gate.what} {job_name} succeeded")
        out.event(f"{gate.event_prefix}Succeeded", f"{gate.what} {job_name} succeeded")
        out.status[gate.status_key] = state
        return True
    if "Failed" in finished:
        failed = finished["Failed"]
        reason = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".strip(": ")
        delay = min(RETRY_CAP_S, RETRY_BASE_S * 2 ** max(int(state.get("attempts", 1)) - 1, 0))
        state.update(
            lastError=f"{gate.what} {job_name} failed ({reason}); retrying in {delay}s",
            retryAt=time.time() + delay,
        )
        await deleting.delete("batch/v1", "Job", namespace, job_name)
        out.condition(gate.condition, False, f"{gate.event_prefix}Failed", state["lastError"])
        out.event(f"{gate.event_prefix}Failed", state["lastError"], warning=True)
        out.status[gate.status_key] = state
        return False
    out.condition(gate.condition, False, gate.running_reason, f"{gate.what} {job_name} is running")
    out.status[gate.status_key] = state
    return False
