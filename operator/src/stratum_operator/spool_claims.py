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
import time
from dataclasses import dataclass
from typing import Any

from stratum_operator import job_status, metrics
from stratum_operator.builders import naming
from stratum_operator.builders.drain import build_drain_job
from stratum_operator.builders.writer_exit import SPOOL_QUARANTINE, WriterExit
from stratum_operator.job_status import JobState
from stratum_operator.k8s import applying, deleting, fetching
from stratum_operator.observe import read_writer
from stratum_operator.outcome import Outcome
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.spec import StratumPoolSpec
from stratum_operator.vocabulary import Reason


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


def _summary(pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The drain's own account of itself: its container's termination message."""
    for pod in job_status.newest_first(pods):
        for _, terminated in job_status.terminations(pod):
            try:
                found = json.loads(terminated.get("message") or "null")
            except ValueError:
                continue
            if isinstance(found, dict):
                return found
    return {}


async def tend(
    pool: dict[str, Any], spec: StratumPoolSpec, out: Outcome, *, keep: int,
    memo: PoolMemory,
) -> list[OrphanClaim]:  # fmt: skip
    """Drain and delete the claims of ordinals ``keep`` and above whose pod is gone.

    ``keep`` is the wanted replica count; 0 while the pool is being deleted. From the
    pool's memory: ``pod_queues`` (the claim's count until its drain Job's own writer
    answers), ``drain_failures`` and ``drain_progress``. What it found goes to the
    metrics as well."""
    name, namespace = naming.name_of(pool)
    if spec.spool.ephemeral:
        orphans: list[OrphanClaim] = []
    else:
        orphans = await _tend_all(pool, spec, out, keep=keep, memo=memo)
    by_state = {state.value: sum(o.state is state for o in orphans) for state in ClaimState}
    shares = {o.name: o.shares for o in orphans if o.shares is not None}
    progress = drain_progress(orphans, memo, now=time.time())
    metrics.spool_claims(namespace, name, by_state, shares, progress)
    return orphans


def drain_progress(orphans: list[OrphanClaim], memo: PoolMemory, *, now: float) -> dict[str, float]:
    """When each draining claim last made progress: it began draining (or its count became
    known), or it holds fewer shares than the fewest seen. Kept in the pool's memory
    (``drain_progress``); an operator restart starts the clocks afresh, which only
    delays the alert that reads them."""
    seen = memo.drain_progress
    kept: dict[str, tuple[int | None, float]] = {}
    for orphan in orphans:
        if orphan.state is not ClaimState.DRAINING:
            continue
        fewest, since = seen.get(orphan.name, (None, now))
        if orphan.shares is not None and (fewest is None or orphan.shares < fewest):
            fewest, since = orphan.shares, now
        kept[orphan.name] = (fewest, since)
    memo.drain_progress = kept
    return {claim: since for claim, (_, since) in kept.items()}


async def _tend_all(
    pool: dict[str, Any], spec: StratumPoolSpec, out: Outcome, *, keep: int,
    memo: PoolMemory,
) -> list[OrphanClaim]:  # fmt: skip
    name, namespace = naming.name_of(pool)
    last_queues = memo.pod_queues
    reported_failures = memo.drain_failures
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
            if job is not None and job_status.state_of(job) is JobState.RUNNING:
                await deleting.delete("batch/v1", "Job", namespace, job_name)
                out.event(Reason.DRAIN_STOPPED, f"pod {ordinal} is back: it resumes {claim_name}")
            continue
        orphan = await _tend_one(pool, spec, claim, ordinal, job, pod_names, out,
                                 reported_failures)  # fmt: skip
        if orphan is not None:
            if orphan.shares is None:
                orphan.shares = last_queues.get(f"{naming.proxy_name(name)}-{ordinal}")
            orphans.append(orphan)
    return orphans


async def _tend_one(
    pool: dict[str, Any], spec: StratumPoolSpec, claim: dict[str, Any], ordinal: int,
    job: dict[str, Any] | None, pod_names: set[str], out: Outcome, reported_failures: set[str],
) -> OrphanClaim | None:  # fmt: skip
    name, namespace = naming.name_of(pool)
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
        naming.own(pool, [manifest])
        job = await applying.apply(manifest)
        out.event(Reason.DRAIN_STARTED, f"draining {claim_name} (pod {ordinal} is gone) with Job "
                  f"{manifest['metadata']['name']}")  # fmt: skip
    job_name = job["metadata"]["name"]
    state = job_status.state_of(job)
    pods = await job_status.pods_of(namespace, job_name)
    summary = _summary(pods)
    if state is JobState.COMPLETE:
        # The Job first: its finished pod still names the claim, and Kubernetes keeps a
        # claim any scheduled pod names (pvc-protection), however long ago the pod ended;
        # the claim would stay Terminating, volume and all, for the Job's TTL. Should we
        # stop between the two, the next pass drains the (empty) claim again.
        await deleting.delete("batch/v1", "Job", namespace, job_name)
        await deleting.delete("v1", "PersistentVolumeClaim", namespace, claim_name, uid=uid)
        stored, before = summary.get("stored", "?"), summary.get("already_stored", 0)
        out.event(Reason.DRAIN_SUCCEEDED, f"{claim_name} drained: {stored} shares stored "
                  f"({before} were already); claim deleted")  # fmt: skip
        return None
    if state is JobState.FAILED:
        reason, why = _kept_because(job, pods, summary)
        if job_name not in reported_failures:  # one Event per failure, not one per pass
            reported_failures.add(job_name)
            out.event(reason, f"{claim_name} kept: {why}", warning=True)
        return OrphanClaim(claim_name, ordinal, ClaimState.KEPT, summary.get("left"), job_name,
                           why)  # fmt: skip
    running = [p for p in pods if p.get("status", {}).get("phase") == "Running"]
    writer = await read_writer(running[0], spec.writer.metrics_port) if running else None
    shares = writer.queue if writer is not None else None
    return OrphanClaim(claim_name, ordinal, ClaimState.DRAINING, shares, job_name)


def _kept_because(
    job: dict[str, Any], pods: list[dict[str, Any]], summary: dict[str, Any]
) -> tuple[Reason, str]:
    """Why a failed drain keeps its claim: the Event's reason and the words for a person."""
    codes = {t.get("exitCode") for p in pods for _, t in job_status.terminations(p)}
    dead, damaged = summary.get("dead_letters"), summary.get("quarantined_bytes")
    letters = (f"{dead} dead letters lie beside its spool: replay them "
               "(stratum-writer replay)") if dead else ""  # fmt: skip
    if WriterExit.SPOOL_DAMAGED in codes or damaged:
        words = (f"{damaged or 'some'} bytes of its spool were damaged and are kept in "
                 f"{SPOOL_QUARANTINE} beside it (shares in them are not stored): see the "
                 "StratumSpoolDamaged runbook")  # fmt: skip
        return Reason.SPOOL_DAMAGED, "; ".join(filter(None, [words, letters])) + _AGAIN
    if dead:
        return Reason.DRAIN_FAILED, letters + _AGAIN
    said = job_status.last_words(pods)
    why = job_status.failure_condition(job)
    gist = " (dead letters remain)" if WriterExit.DEAD_LETTERS_LEFT in codes else ""
    return Reason.DRAIN_FAILED, f"the drain Job failed{gist}: {why}" + (f"; {said}" if said else "")


_AGAIN = ", then delete the Job to drain again"
