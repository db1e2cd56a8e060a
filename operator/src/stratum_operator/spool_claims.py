"""Spool claims whose pod is gone: drained by a Job, deleted only once it proved them empty.

A proxy pod's spool is a claim that outlives it (``builders/statefulset.py``). When its
pod is gone for good (the pool scaled in, or is being deleted), the claim may still hold
shares: a drain Job (``stratum-writer drain``) stores them, and only its success, the
proof that the claim is empty and holds no dead letters, lets the operator delete the
claim, guarded by the claim's uid. A failed drain keeps the claim and says why. Should
the pool scale back up, the returning pod resumes its own claim and the drain stops.

SQLite pools keep their database on the claim itself: those claims are never drained or
deleted by the operator; status says so and the user decides.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

import kopf

from stratum_operator.builders import naming
from stratum_operator.builders.drain import EXIT_DEAD_LETTERS_LEFT, build_drain_job
from stratum_operator.k8s import applying, deleting, fetching
from stratum_operator.observe import read_writer
from stratum_operator.outcome import Outcome
from stratum_operator.spec import StratumPoolSpec


class ClaimState(enum.Enum):
    """What ``status.spool.claims[].state`` says of a claim whose pod is gone."""

    POD_TERMINATING = "PodTerminating"  # its pod still runs its own writer's drain
    DRAINING = "Draining"  # the drain Job runs (waiting out the database, if need be)
    KEPT = "Kept"  # the drain failed or left dead letters: evidence, kept for a person
    HOLDS_DATABASE = "HoldsDatabase"  # SQLite: the claim is the database


@dataclass
class OrphanClaim:
    name: str
    ordinal: int
    state: ClaimState
    shares: int | None = None  # what it still holds, when known
    job: str | None = None
    message: str = ""

    def as_status(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"claim": self.name, "ordinal": self.ordinal,
                                 "state": self.state.value}  # fmt: skip
        if self.shares is not None:
            entry["shares"] = self.shares
        if self.job:
            entry["job"] = self.job
        if self.message:
            entry["message"] = self.message
        return entry


def _job_state(job: dict[str, Any]) -> str:
    for cond in job.get("status", {}).get("conditions", []):
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
    return "Running"


async def _job_pods(namespace: str, job: str) -> list[dict[str, Any]]:
    return await fetching.list_objects(
        "v1", "Pod", namespace, {"batch.kubernetes.io/job-name": job}
    )


def _summary(pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The drain's own account of itself: its container's termination message."""
    for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""),
                      reverse=True):  # fmt: skip
        for status in pod.get("status", {}).get("containerStatuses", []):
            terminated = status.get("state", {}).get("terminated") or {}
            try:
                found = json.loads(terminated.get("message") or "null")
            except ValueError:
                continue
            if isinstance(found, dict):
                return found
    return {}


async def tend(
    body: kopf.Body, spec: StratumPoolSpec, out: Outcome, *, keep: int,
    last_queues: dict[str, int],
) -> list[OrphanClaim]:  # fmt: skip
    """Drain and delete the claims of ordinals ``keep`` and above whose pod is gone.

    ``keep`` is the wanted replica count; 0 while the pool is being deleted.
    ``last_queues``: each pod's queue as last read, the claim's count until its drain
    Job's own writer answers."""
    name, namespace = body.metadata.name, body.metadata.namespace
    assert name is not None and namespace is not None
    if spec.spool.ephemeral:
        return []
    claims = await fetching.list_objects(
        "v1", "PersistentVolumeClaim", namespace, naming.claim_selector(name)
    )
    pods = await fetching.list_objects("v1", "Pod", namespace, naming.selector(name, "proxy"))
    pod_names = {p["metadata"]["name"] for p in pods}
    drains = await fetching.list_objects(
        "batch/v1", "Job", namespace, naming.selector(name, naming.DRAIN_COMPONENT)
    )
    orphans = []
    for claim in claims:
        claim_name = claim["metadata"]["name"]
        ordinal = naming.claim_ordinal(name, claim_name)
        if ordinal is None or claim["metadata"].get("deletionTimestamp"):
            continue
        job_name = naming.drain_job_name(name, ordinal, claim["metadata"]["uid"])
        job = next((j for j in drains if j["metadata"]["name"] == job_name), None)
        if ordinal < keep:  # its pod is (or comes) back and resumes the claim itself
            if job is not None and _job_state(job) == "Running":
                await deleting.delete("batch/v1", "Job", namespace, job_name)
                out.event("DrainStopped", f"pod {ordinal} is back: it resumes {claim_name}")
            continue
        orphan = await _tend_one(body, spec, claim, ordinal, job, pod_names, out)
        if orphan is not None:
            if orphan.shares is None:
                orphan.shares = last_queues.get(f"{naming.proxy_name(name)}-{ordinal}")
            orphans.append(orphan)
    return orphans


async def _tend_one(
    body: kopf.Body, spec: StratumPoolSpec, claim: dict[str, Any], ordinal: int,
    job: dict[str, Any] | None, pod_names: set[str], out: Outcome,
) -> OrphanClaim | None:  # fmt: skip
    name, namespace = str(body.metadata.name), str(body.metadata.namespace)
    claim_name, uid = claim["metadata"]["name"], claim["metadata"]["uid"]
    if f"{naming.proxy_name(name)}-{ordinal}" in pod_names:
        why = "its pod is still stopping (its writer drains first)"
        return OrphanClaim(claim_name, ordinal, ClaimState.POD_TERMINATING, message=why)
    if spec.persistence.backend == "sqlite":
        why = "the SQLite database lives on this claim; it is kept"
        return OrphanClaim(claim_name, ordinal, ClaimState.HOLDS_DATABASE, message=why)
    if job is None:
        manifest = build_drain_job(name, namespace, spec, ordinal=ordinal, claim=claim_name,
                                   claim_uid=uid)  # fmt: skip
        kopf.adopt(manifest, owner=body, strict=True)
        job = await applying.apply(manifest)
        out.event("DrainStarted", f"draining {claim_name} (pod {ordinal} is gone) with Job "
                  f"{manifest['metadata']['name']}")  # fmt: skip
    job_name = job["metadata"]["name"]
    state = _job_state(job)
    pods = await _job_pods(namespace, job_name)
    summary = _summary(pods)
    if state == "Complete":
        await deleting.delete("v1", "PersistentVolumeClaim", namespace, claim_name, uid=uid)
        stored, before = summary.get("stored", "?"), summary.get("already_stored", 0)
        out.event("DrainSucceeded", f"{claim_name} drained: {stored} shares stored "
                  f"({before} were already); claim deleted")  # fmt: skip
        return None
    if state == "Failed":
        dead = summary.get("dead_letters")
        why = (f"{dead} dead letters lie beside its spool: replay them "
               "(stratum-writer replay), then delete the Job to drain again")  # fmt: skip
        if not dead:
            why = _failure(job, pods)
        out.event("DrainFailed", f"{claim_name} kept: {why}", warning=True)
        return OrphanClaim(claim_name, ordinal, ClaimState.KEPT, summary.get("left"), job_name,
                           why)  # fmt: skip
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    writer = await read_writer(running[0], spec.writer.metrics_port) if running else None
    shares = writer.queue if writer is not None else None
    return OrphanClaim(claim_name, ordinal, ClaimState.DRAINING, shares, job_name)


def _failure(job: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    for cond in job.get("status", {}).get("conditions", []):
        if cond.get("type") == "Failed":
            statuses = [s for p in pods for s in p.get("status", {}).get("containerStatuses", [])]
            codes = [s.get("state", {}).get("terminated", {}).get("exitCode") for s in statuses]
            code = next((c for c in codes if c not in (None, 0)), None)
            dead = " (dead letters remain)" if code == EXIT_DEAD_LETTERS_LEFT else ""
            return f"the drain Job failed{dead}: {cond.get('reason', '')} {cond.get('message', '')}"
    return "the drain Job failed"
