"""The Vitess keyspace Job, and what we need to know of a PlanetScale ``VitessCluster``.

The Job's steps, each its own container so a failure names the step:

1. ``export`` (writer image): writes this writer version's ``schema.sql`` and
   ``vschema.json`` to a shared volume; the schema belongs to the writer that uses it.
2. ``create-keyspace``: ``vtctldclient CreateKeyspace --force`` (a no-op when it
   exists). Skipped when a VitessCluster manages the keyspace: the vitess-operator
   prunes keyspaces it was not told about, so there the keyspace is declared in the
   VitessCluster instead, and the Job waits for it to be ready.
3. ``apply-schema``: ``ApplySchema`` (every statement is ``CREATE TABLE IF NOT EXISTS``,
   so re-running is a no-op).
4. ``apply-vschema``: ``ApplyVSchema``.
5. ``get-vschema``: ``GetVSchema`` into the shared volume.
6. ``verify`` (writer image): compares it with what was applied; a mismatch fails the Job.

Named by a hash of what it applies, so a new writer version or a new vtctld gets a new
Job and a finished one is never run again.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.jobs import JOB_TMP, build_job
from stratum_operator.builders.pod import TMP_MOUNT, tmp_volume
from stratum_operator.builders.writer_exit import WriterExit
from stratum_operator.spec import StratumPoolSpec, VitessSpec

WORK_DIR = "/var/run/stratum-vitess"
_ACTION_TIMEOUT = "--action-timeout=2m"  # a vtctld that does not answer fails the step
_MOUNTS = [{"name": "work", "mountPath": WORK_DIR}, TMP_MOUNT]  # every step's


def keyspace_digest(spec: StratumPoolSpec, *, managed: bool) -> str:
    vitess = _vitess(spec)
    return naming.content_hash(
        spec.writer_image,
        vitess.vtctldclient_image,
        vitess.keyspace,
        vitess.vtctld_address,
        managed,
    )


def _vitess(spec: StratumPoolSpec) -> VitessSpec:
    if spec.vitess is None:
        raise ValueError("the vitess backend needs spec.vitess")
    return spec.vitess


def _vtctldclient(name: str, vitess: VitessSpec, *args: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": vitess.vtctldclient_image,
        "command": ["vtctldclient", "--server", vitess.vtctld_address, _ACTION_TIMEOUT, *args],
        "volumeMounts": _MOUNTS,
    }


def keyspace_steps(spec: StratumPoolSpec, *, managed: bool) -> list[dict[str, Any]]:
    """The Job's containers in order; the last one is the Job's main container."""
    vitess = _vitess(spec)
    ks = vitess.keyspace
    steps: list[dict[str, Any]] = [
        {"name": "export", "image": spec.writer_image, "args": ["export-vitess", WORK_DIR],
         "volumeMounts": _MOUNTS},
    ]  # fmt: skip
    if not managed:
        steps.append(_vtctldclient("create-keyspace", vitess, "CreateKeyspace", "--force", ks))
    steps += [
        _vtctldclient("apply-schema", vitess, "ApplySchema", "--sql-file",
                      f"{WORK_DIR}/schema.sql", ks),
        _vtctldclient("apply-vschema", vitess, "ApplyVSchema", "--vschema-file",
                      f"{WORK_DIR}/vschema.json", ks),
        {
            "name": "get-vschema",
            "image": vitess.vtctldclient_image,
            "command": ["/bin/sh", "-c",
                        f'exec vtctldclient --server "$VTCTLD" {_ACTION_TIMEOUT} '
                        f'GetVSchema "$KEYSPACE" > {WORK_DIR}/applied.json'],
            "env": [{"name": "VTCTLD", "value": vitess.vtctld_address},
                    {"name": "KEYSPACE", "value": ks}],
            "volumeMounts": _MOUNTS,
        },
        {"name": "verify", "image": spec.writer_image,
         "args": ["verify-vschema", f"{WORK_DIR}/applied.json"], "volumeMounts": _MOUNTS},
    ]  # fmt: skip
    return steps


def build_keyspace_job(
    name: str, namespace: str, spec: StratumPoolSpec, *, managed: bool
) -> dict[str, Any]:
    steps = keyspace_steps(spec, managed=managed)
    return build_job(
        naming.vitess_job_name(name, keyspace_digest(spec, managed=managed)),
        namespace,
        name,
        "vitess-keyspace",
        spec,
        resources=spec.jobs.resources,
        init_containers=steps[:-1],
        containers=steps[-1:],
        volumes=[{"name": "work", "emptyDir": {"sizeLimit": "16Mi"}}, tmp_volume(JOB_TMP)],
        config_error_exit_codes=(WriterExit.STILL_FAILING,),  # verify: another VSchema
    )


# -- a VitessCluster (planetscale.com/v2) managed by the vitess-operator --------------


def declared_keyspace(cluster: dict[str, Any], keyspace: str) -> dict[str, Any] | None:
    for entry in cluster.get("spec", {}).get("keyspaces") or []:
        if entry.get("name") == keyspace:
            return dict(entry)
    return None


def keyspace_readiness(cluster: dict[str, Any], keyspace: str) -> tuple[bool, str]:
    """Ready when every desired shard of the keyspace is ready (the operator's status)."""
    status = (cluster.get("status", {}).get("keyspaces") or {}).get(keyspace)
    if not status:
        return False, f"VitessCluster reports no status for keyspace {keyspace!r} yet"
    desired, ready = int(status.get("desiredShards", 0)), int(status.get("readyShards", 0))
    if desired and ready >= desired:
        return True, f"keyspace {keyspace!r}: {ready}/{desired} shards ready"
    return False, f"keyspace {keyspace!r}: {ready}/{desired} shards ready"


def equal_shards(parts: int) -> list[str]:
    """Vitess's names for ``parts`` equal shards: 2 -> ``-80, 80-``."""
    bounds = [f"{i * 256 // parts:02x}" for i in range(1, parts)]
    return [f"{lo}-{hi}" for lo, hi in zip(["", *bounds], [*bounds, ""], strict=True)]


def equal_parts(shards: list[str]) -> int | None:
    """N when ``shards`` are Vitess's N equal shards (``-80,80-`` is 2), else None."""
    n = len(shards)
    if n == 1:
        return 1 if shards[0] in ("-", "0") else None
    if n & (n - 1) or n > 256:
        return None
    return n if sorted(shards) == sorted(equal_shards(n)) else None


def keyspace_entry(cluster: dict[str, Any], spec: StratumPoolSpec) -> dict[str, Any]:
    """The ``spec.keyspaces`` entry to add for our keyspace, with its shards' tablets
    modelled on the cluster's first keyspace. ValueError says why we can't build it."""
    vitess = _vitess(spec)
    parts = equal_parts(vitess.shards)
    if parts is None:
        raise ValueError(
            f"shards {vitess.shards} are not equal parts of the keyspace; "
            "declare the keyspace in the VitessCluster yourself"
        )
    for entry in cluster.get("spec", {}).get("keyspaces") or []:
        for partitioning in entry.get("partitionings") or []:
            template = (partitioning.get("equal") or {}).get("shardTemplate")
            if template:
                declared: dict[str, Any] = {
                    "name": vitess.keyspace,
                    "partitionings": [{"equal": {"parts": parts, "shardTemplate": template}}],
                }
                if "durabilityPolicy" in entry:
                    declared["durabilityPolicy"] = entry["durabilityPolicy"]
                return declared
    raise ValueError(
        "the VitessCluster has no keyspace with an equal partitioning to model the tablets "
        "on; declare the keyspace in the VitessCluster yourself"
    )
