"""Where a pool's Vitess keyspace lives, and whether the keyspace Job may run yet.

Two ways a user runs Vitess. A cluster no operator manages: our Job creates the keyspace
itself. A cluster managed by the PlanetScale vitess-operator: that operator prunes
keyspaces missing from its ``VitessCluster.spec.keyspaces`` (``pruneKeyspaces``
defaults to true), so creating one behind its back would be undone, and shares with it.
There the keyspace must be declared in the VitessCluster (by the user, or by us when
``spec.vitess.patchVitessCluster`` says so), and our Job waits until the vitess-operator
reports every shard of it ready, then applies only the schema and the VSchema.

A VitessCluster is found by name (``spec.vitess.vitessCluster``) or, without one, by
looking for a VitessCluster in the namespace that declares the keyspace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratum_operator.builders.vitess import declared_keyspace, keyspace_entry, keyspace_readiness
from stratum_operator.k8s import fetching, patching
from stratum_operator.k8s.errors import NotFound
from stratum_operator.outcome import Outcome
from stratum_operator.spec import StratumPoolSpec
from stratum_operator.vocabulary import ConditionType, Reason

API_VERSION, KIND = "planetscale.com/v2", "VitessCluster"


@dataclass(frozen=True)
class Placement:
    managed_by: str | None  # the VitessCluster's name; None for a cluster nobody manages

    @property
    def managed(self) -> bool:
        return self.managed_by is not None


def _hold(out: Outcome, reason: Reason, message: str, *, blocked: bool) -> None:
    out.condition(ConditionType.KEYSPACE_READY, False, reason, message)
    if blocked:
        out.condition(ConditionType.DEGRADED, True, reason, message)
    else:
        out.healthy()
    out.condition(ConditionType.READY, False, Reason.KEYSPACE_NOT_READY,
                  "waiting for the Vitess keyspace")  # fmt: skip


async def _declaring_cluster(namespace: str, keyspace: str) -> dict[str, Any] | None:
    try:
        clusters = await fetching.list_objects(API_VERSION, KIND, namespace, {})
    except NotFound:  # the planetscale.com CRDs are not installed
        return None
    return next((c for c in clusters if declared_keyspace(c, keyspace) is not None), None)


async def place_keyspace(namespace: str, spec: StratumPoolSpec, out: Outcome) -> Placement | None:
    """The keyspace's placement once the Job may run; None (with conditions set) until then."""
    assert spec.vitess is not None
    vitess, keyspace = spec.vitess, spec.vitess.keyspace
    if vitess.vitess_cluster:
        name = vitess.vitess_cluster
        cluster = await fetching.get(API_VERSION, KIND, namespace, name)
        if cluster is None:
            _hold(
                out,
                Reason.VITESS_CLUSTER_MISSING,
                f"VitessCluster {name!r} not found in namespace {namespace!r} "
                "(is the vitess-operator installed, and the name right?)",
                blocked=True,
            )
            return None
    else:
        cluster = await _declaring_cluster(namespace, keyspace)
        if cluster is None:
            out.status["vitessCluster"] = None
            return Placement(None)
        name = cluster["metadata"]["name"]
    out.status["vitessCluster"] = name
    if declared_keyspace(cluster, keyspace) is None:
        if not vitess.patch_vitess_cluster:
            _hold(
                out,
                Reason.KEYSPACE_NOT_DECLARED,
                f"keyspace {keyspace!r} is not declared in VitessCluster {name!r}, whose "
                "operator prunes keyspaces it does not know: add it to its spec.keyspaces, "
                "or set spec.vitess.patchVitessCluster: true",
                blocked=True,
            )
            return None
        try:
            entry = keyspace_entry(cluster, spec)
        except ValueError as exc:
            _hold(
                out,
                Reason.KEYSPACE_NOT_DECLARED,
                f"can't declare {keyspace!r} in VitessCluster {name!r}: {exc}",
                blocked=True,
            )
            return None
        await _declare(cluster, entry, out)
        return None
    ready, message = keyspace_readiness(cluster, keyspace)
    if not ready:
        _hold(out, Reason.WAITING_FOR_VITESS_CLUSTER, message, blocked=False)
        return None
    return Placement(name)


async def _declare(cluster: dict[str, Any], entry: dict[str, Any], out: Outcome) -> None:
    name = cluster["metadata"]["name"]
    has_list = "keyspaces" in cluster.get("spec", {})
    declare = {
        "op": "add",
        "path": "/spec/keyspaces/-" if has_list else "/spec/keyspaces",
        "value": entry if has_list else [entry],
    }
    if not await patching.patch_unless_moved(cluster, [declare]):  # edited meanwhile
        _hold(
            out,
            Reason.WAITING_FOR_VITESS_CLUSTER,
            f"VitessCluster {name!r} changed while declaring the keyspace; retrying",
            blocked=False,
        )
        return
    parts = entry["partitionings"][0]["equal"]["parts"]
    out.event(
        Reason.VITESS_CLUSTER_PATCHED,
        f"declared keyspace {entry['name']!r} ({parts} shards) in VitessCluster {name!r}",
    )
    _hold(
        out,
        Reason.WAITING_FOR_VITESS_CLUSTER,
        f"declared keyspace {entry['name']!r} in VitessCluster {name!r}; waiting for its "
        "shards to be ready",
        blocked=False,
    )
