"""One-shot Jobs: the schema migration the proxies wait for.

A Job is named by a hash of what it applies (the writer image carries the migrations;
the database it targets), so a new writer version gets a new migration Job, and the
same one is never run twice. The proxy Deployment is only rolled out once the Job for
its writer image has succeeded: proxies never run against a schema they don't match.
"""

from __future__ import annotations

from typing import Any

from stratum_operator.builders import naming
from stratum_operator.builders.config import CONFIG_DIR, DATABASE_URL_FILE
from stratum_operator.builders.deployment import USER_ID

_FINISHED_TTL_S = 7 * 24 * 3600  # long enough to read its logs after an incident
_BACKOFF_LIMIT = 4  # pod retries with the Job controller's exponential backoff
_DEADLINE_S = 900  # a migration that runs longer than this is stuck, not slow


def migration_digest(spec: Any) -> str:
    secret = spec.persistence.database_url_secret
    return naming.content_hash(
        spec.writer_image, spec.persistence.backend, secret.model_dump() if secret else None
    )


def build_migration_job(name: str, namespace: str, spec: Any) -> dict[str, Any] | None:
    """None for SQLite: its database is a file in each pod, migrated by the writer itself."""
    secret = spec.persistence.database_url_secret
    if secret is None:
        return None
    job_name = naming.migration_job_name(name, migration_digest(spec))
    container = {
        "name": "migrate",
        "image": spec.writer_image,
        "args": ["--config", f"{CONFIG_DIR}/writer.json", "migrate"],
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {
                "name": "database",
                "mountPath": DATABASE_URL_FILE.rsplit("/", 1)[0],
                "readOnly": True,
            },
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": naming.metadata(job_name, namespace, name, "migration"),
        "spec": {
            "backoffLimit": _BACKOFF_LIMIT,
            "activeDeadlineSeconds": _DEADLINE_S,
            "ttlSecondsAfterFinished": _FINISHED_TTL_S,
            # Exit 2 is the writer saying its settings or database URL are wrong: retrying
            # in seconds won't fix that. Fail the Job at once; the operator reports the
            # reason and retries on its own, slower, backoff.
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": "migrate",
                            "operator": "In",
                            "values": [2],
                        },
                    }
                ]
            },
            "template": {
                "metadata": {"labels": naming.labels(name, "migration")},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": USER_ID,
                        "runAsGroup": USER_ID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": naming.config_name(name)}},
                        {
                            "name": "database",
                            "secret": {
                                "secretName": secret.name,
                                "items": [{"key": secret.key, "path": "url"}],
                                "defaultMode": 0o440,
                            },
                        },
                        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }
