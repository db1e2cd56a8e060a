"""The drain Job: the writer image emptying one spool claim whose pod is gone.

``stratum-writer drain`` stores what the claim holds and exits 0 only once it is empty
and no dead letter lies beside it: that exit is the proof on which the operator deletes
the claim. While the database is down the command waits it out itself; should its pod
die (eviction, node loss), the Job's own backoff starts another, with no deadline that
gives up on shares. Its summary (shares stored, left, dead letters) is the pod's
termination message, which the operator reads for its Events.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.config import CONFIG_DIR
from stratum_operator.builders.jobs import build_job
from stratum_operator.builders.pod import (
    CONFIG_MOUNT,
    SPOOL_MOUNT,
    TERMINATION_LOG,
    TMP_MOUNT,
    claimed_spool_volume,
    config_volume,
    tmp_volume,
    writer_database,
)
from stratum_operator.builders.writer_exit import (
    CONFIGURATION_ERRORS,
    EVIDENCE_LEFT,
    WriterExit,
)
from stratum_operator.spec import StratumPoolSpec

# Pod failures (evictions, node loss) the Job retries before it is Failed; with the Job
# controller's backoff capped at six minutes, this is days of trying.
DRAIN_BACKOFF_LIMIT = 1000


def build_drain_job(
    pool: str, namespace: str, spec: StratumPoolSpec, *, ordinal: int, claim: str, claim_uid: str
) -> dict[str, Any]:
    database_volumes, database_mounts = writer_database(spec)
    container: dict[str, Any] = {
        "name": "drain",
        "image": spec.writer_image,
        "args": [
            "--config",
            f"{CONFIG_DIR}/writer.json",
            "drain",
            "--summary-file",
            TERMINATION_LOG,
        ],
        "ports": [{"name": "writer-metrics", "containerPort": spec.writer.metrics_port}],
        "volumeMounts": [CONFIG_MOUNT, SPOOL_MOUNT, TMP_MOUNT, *database_mounts],
        "terminationMessagePolicy": "File",
    }
    job = build_job(
        naming.drain_job_name(pool, ordinal, claim_uid),
        namespace,
        pool,
        naming.DRAIN_COMPONENT,
        spec,
        containers=[container],
        resources=spec.writer.resources or {},  # it is the writer, draining
        volumes=[
            config_volume(pool),
            claimed_spool_volume(claim),
            tmp_volume("64Mi"),
            *database_volumes,
        ],
        backoff_limit=DRAIN_BACKOFF_LIMIT,
        deadline_s=None,
    )
    job["metadata"]["annotations"] = {f"{naming.GROUP}/claim": claim}
    # a dead letter or a quarantined byte beside the spool is evidence: the Job fails and
    # the claim stays; so do a configuration it can't use and a schema that isn't there
    # or is too new
    codes = sorted([*CONFIGURATION_ERRORS, WriterExit.NOT_MIGRATED, *EVIDENCE_LEFT])
    give_up = {"containerName": "drain", "operator": "In", "values": codes}
    job["spec"]["podFailurePolicy"] = {"rules": [
        # an evicted or preempted pod is no failure of the drain: it does not count
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": give_up},
    ]}  # fmt: skip
    return job
