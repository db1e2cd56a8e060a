"""Pure builders: a StratumPool's name, namespace and spec in, its children's manifests out.

Nothing here talks to the API server, so every manifest can be checked in a unit test;
the handlers only decide *which* of these to apply, and apply them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratum_operator.builders.config import build_configmap
from stratum_operator.builders.deployment import build_deployment, config_hash
from stratum_operator.builders.jobs import build_migration_job, migration_digest
from stratum_operator.builders.network import build_pdb, build_service
from stratum_operator.spec import StratumPoolSpec

__all__ = ["Children", "config_hash", "desired_objects", "migration_digest"]


@dataclass(frozen=True)
class Children:
    """Everything a StratumPool owns, split by when it may be applied."""

    config: dict[str, Any]
    migration: dict[str, Any] | None  # first; None when the backend needs none
    workload: list[dict[str, Any]]  # only once the schema is ready: Deployment, Service, PDB

    def all(self) -> list[dict[str, Any]]:
        return [self.config, *([self.migration] if self.migration else []), *self.workload]


def desired_objects(name: str, namespace: str, spec: StratumPoolSpec) -> Children:
    return Children(
        config=build_configmap(name, namespace, spec),
        migration=build_migration_job(name, namespace, spec),
        workload=[
            build_deployment(name, namespace, spec),
            build_service(name, namespace, spec),
            build_pdb(name, namespace, spec),
        ],
    )
