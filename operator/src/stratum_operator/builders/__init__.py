"""Pure builders: a StratumPool's name, namespace and spec in, its children's manifests out.

Nothing here talks to the API server, so every manifest can be checked in a unit test;
the handlers only decide *which* of these to apply, and apply them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratum_operator.builders.config import build_configmap
from stratum_operator.builders.jobs import build_migration_job, migration_digest
from stratum_operator.builders.network import build_pdb, build_pods_service, build_service
from stratum_operator.builders.retention import build_retention_cronjob
from stratum_operator.builders.statefulset import build_statefulset, config_hash
from stratum_operator.builders.vitess import build_keyspace_job
from stratum_operator.spec import StratumPoolSpec

__all__ = ["Children", "config_hash", "desired_objects", "migration_digest"]


@dataclass(frozen=True)
class Children:
    """Everything a StratumPool owns, split by when it may be applied."""

    config: dict[str, Any]
    keyspace: dict[str, Any] | None  # Vitess only: the keyspace Job, before the migration
    migration: dict[str, Any] | None  # None when the backend needs none
    # only once the schema is ready: the StatefulSet first, then its Services and PDB
    workload: list[dict[str, Any]]
    retention: dict[str, Any] | None  # the CronJob, once the schema is ready; None: none

    def all(self) -> list[dict[str, Any]]:
        optional = (self.keyspace, self.migration, self.retention)
        return [self.config, *(o for o in optional if o is not None), *self.workload]


def desired_objects(
    name: str, namespace: str, spec: StratumPoolSpec, *, vitess_managed: bool = False
) -> Children:
    """``vitess_managed``: a VitessCluster manages the keyspace (found by the operator);
    the keyspace Job then applies schema and VSchema but never creates the keyspace."""
    vitess = spec.persistence.backend == "vitess"
    return Children(
        config=build_configmap(name, namespace, spec),
        keyspace=build_keyspace_job(name, namespace, spec, managed=vitess_managed)
        if vitess
        else None,
        migration=build_migration_job(name, namespace, spec),
        workload=[
            build_statefulset(name, namespace, spec),
            build_pods_service(name, namespace, spec),
            build_service(name, namespace, spec),
            build_pdb(name, namespace, spec),
        ],
        retention=build_retention_cronjob(name, namespace, spec),
    )
