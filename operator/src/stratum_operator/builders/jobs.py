"""One-shot Jobs: the schema migration the proxies wait for, and the frame every Job
we run shares (retries, deadline, TTL, a restricted pod).

A Job is named by a hash of what it applies (the writer image carries the migrations;
the database it targets), so a new writer version gets a new migration Job, and the
same one is never run twice. The proxy Deployment is only rolled out once the Job for
its writer image has succeeded: proxies never run against a schema they don't match.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.config import CONFIG_DIR
from stratum_operator.builders.pod import (
    CONFIG_MOUNT,
    DATABASE_MOUNT,
    TMP_MOUNT,
    config_volume,
    database_volume,
    job_scheduling,
    pod_spec,
    tmp_volume,
)
from stratum_operator.builders.writer_exit import CONFIGURATION_ERRORS
from stratum_operator.spec import SecretKeyRef, StratumPoolSpec

# a finished Job goes after a week. A failed migration or keyspace Job is deleted by the
# operator once a later attempt succeeded (job_gate.py); attempts come at most 30 min
# apart, so the last failure is always there to read, and this never takes it first
_FINISHED_TTL_S = 7 * 24 * 3600
_BACKOFF_LIMIT = 4  # pod retries with the Job controller's exponential backoff
_DEADLINE_S = 900  # a Job that runs longer than this is stuck, not slow
JOB_TMP = "16Mi"  # a Job's /tmp: one command's scratch, no spool beside it


def build_job(
    job_name: str,
    namespace: str,
    pool: str,
    component: str,
    spec: StratumPoolSpec,
    *,
    containers: list[dict[str, Any]],
    volumes: list[dict[str, Any]],
    resources: dict[str, Any],
    init_containers: list[dict[str, Any]] | None = None,
    config_error_exit_codes: tuple[int, ...] = (),
    backoff_limit: int = _BACKOFF_LIMIT,
    deadline_s: int | None = _DEADLINE_S,
) -> dict[str, Any]:
    """A Job in our frame. ``config_error_exit_codes``: the exit codes with which the
    last container says its settings are wrong; retrying in seconds won't fix that, so the
    Job fails at once and the operator reports the reason and retries on its own,
    slower, backoff. ``deadline_s`` None: no deadline (a Job that must not give up).
    ``resources``: every container's (a ResourceQuota admits only pods that request)."""
    for container in containers + (init_containers or []):
        # a failed container's log tail becomes its termination message, unless it wrote
        # one: the operator quotes it in the pool's condition (job_status.last_words)
        container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
        if resources:
            container["resources"] = resources
    pod = pod_spec(containers, volumes, spec)
    pod["restartPolicy"] = "Never"
    pod.update(job_scheduling(spec))
    if init_containers:
        pod_spec(init_containers, [], spec)  # the same container security
        pod["initContainers"] = init_containers
    job_spec: dict[str, Any] = {
        "backoffLimit": backoff_limit,
        "ttlSecondsAfterFinished": _FINISHED_TTL_S,
        "template": {"metadata": {"labels": naming.labels(pool, component)}, "spec": pod},
    }
    if deadline_s is not None:
        job_spec["activeDeadlineSeconds"] = deadline_s
    if config_error_exit_codes:
        job_spec["podFailurePolicy"] = {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": containers[-1]["name"],
                        "operator": "In",
                        "values": sorted(config_error_exit_codes),  # as the API wants
                    },
                }
            ]
        }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": naming.metadata(job_name, namespace, pool, component),
        "spec": job_spec,
    }


def migration_digest(spec: Any) -> str:
    secret = spec.persistence.migration_secret
    return naming.content_hash(
        spec.writer_image, spec.persistence.backend, secret.model_dump() if secret else None
    )


def writer_database_job(
    job_name: str, namespace: str, pool: str, component: str, spec: StratumPoolSpec,
    secret: SecretKeyRef, *, container: str, command: list[str], **frame: Any,
) -> dict[str, Any]:  # fmt: skip
    """A Job running one ``stratum-writer`` command on the pool's database, connecting
    with ``secret``'s URL: the migration Job, the retention CronJob's runs. ``frame``:
    what ``build_job`` takes beyond the pod (backoff, deadline)."""
    return build_job(
        job_name, namespace, pool, component, spec,
        containers=[{
            "name": container,
            "image": spec.writer_image,
            "args": ["--config", f"{CONFIG_DIR}/writer.json", *command],
            "volumeMounts": [CONFIG_MOUNT, DATABASE_MOUNT, TMP_MOUNT],
        }],
        volumes=[config_volume(pool), database_volume(secret), tmp_volume(JOB_TMP)],
        resources=spec.jobs.resources,
        config_error_exit_codes=CONFIGURATION_ERRORS,
        **frame,
    )  # fmt: skip


def build_migration_job(name: str, namespace: str, spec: Any) -> dict[str, Any] | None:
    """None for SQLite: its database is a file in each pod, migrated by the writer itself.
    It connects with the migration credentials (DDL), not the writers'."""
    secret = spec.persistence.migration_secret
    if secret is None:
        return None
    return writer_database_job(
        naming.migration_job_name(name, migration_digest(spec)), namespace, name, "migration",
        spec, secret, container="migrate", command=["migrate"],
    )  # fmt: skip
