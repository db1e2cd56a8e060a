"""The StratumPool CRD, served by a real kube-apiserver: defaults applied, mistakes refused
with messages a person understands, and the operator's spec model agreeing with it."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from harness.kubernetes import ROOT, ControlPlane
from stratum_operator.spec import StratumPoolSpec, parse_spec

CRD = ROOT / "crds" / "stratumpools.stratum.io.yaml"


def pool(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "upstreams": ["stratum+tcp://pool.example.com:3333"],
        "persistence": {"backend": "postgres", "databaseUrlSecret": {"name": "db"}},
    }
    body.update(spec)
    return {
        "apiVersion": "stratum.io/v1alpha1",
        "kind": "StratumPool",
        "metadata": {"name": name, "namespace": "default"},
        "spec": body,
    }


def test_a_valid_pool_is_stored_with_defaults(installed_chart: ControlPlane) -> None:
    # as the API server stored it at creation (a running operator then fills in replicas)
    stored = json.loads(installed_chart.kubectl("create", "-f", "-", "-o", "json",
                                                stdin=json.dumps(pool("defaults"))))  # fmt: skip
    spec = stored["spec"]
    assert "replicas" not in spec["proxy"], "its default depends on the backend: the model's"
    assert parse_spec(spec).proxy.replicas == 2 and spec["proxy"]["serviceType"] == "LoadBalancer"
    assert spec["writer"] == {
        "metricsPort": 9102,
        "minWorkers": 1,
        "maxWorkers": 8,
        "targetQueueDepth": 20000,
        "scaleDownStabilizationSeconds": 300,
    }
    assert spec["persistence"]["databaseUrlSecret"]["key"] == "url"
    # what the API server defaulted is what the operator's model would have assumed
    assert parse_spec(spec) == parse_spec(pool("x")["spec"])


MISTAKES = [
    ({"upstreams": ["http://pool:80"]}, "an upstream is stratum+tcp://host:port"),
    ({"upstreams": []}, "should have at least 1 items"),
    ({"persistence": {"backend": "postgres"}}, "persistence.databaseUrlSecret is required"),
    (
        {"persistence": {"backend": "oracle"}},
        'supported values: "postgres", "mysql", "vitess", "sqlite"',
    ),
    (
        {"persistence": {"backend": "vitess", "databaseUrlSecret": {"name": "db"}}},
        "backend 'vitess' needs spec.vitess",
    ),
    ({"writer": {"minWorkers": 9, "maxWorkers": 4}}, "writer.minWorkers must not be greater"),
    ({"proxy": {"replicas": 0}}, "should be greater than or equal to 1"),
    ({"proxy": {"port": 9101}}, "must be three different ports"),
    ({"persistence": {"backend": "sqlite"}, "proxy": {"replicas": 3}}, "it is for local runs"),
    ({"retention": {"shareDays": 3}}, "should be greater than or equal to 7"),
    (
        {"upstreamCredentials": {"name": "farm", "workerSeparator": "."}},
        "spec.upstreamCredentials.workerSeparator: Invalid value",
    ),
    ({"proxy": {"maxSubmitsPerSecond": 0}}, "should be greater than or equal to 1"),
    ({"retention": {"shareDays": 60, "rollupDays": 30}}, "rollupDays must be at least"),
    (
        {"proxy": {"serviceType": "Ingress"}},
        'supported values: "ClusterIP", "NodePort", "LoadBalancer"',
    ),
    (
        {"proxy": {"serviceType": "ClusterIP", "nodePort": 30333}},
        "proxy.nodePort needs serviceType NodePort or LoadBalancer",
    ),
    (
        {
            "proxy": {
                "serviceType": "NodePort",
                "serviceTemplate": {"spec": {"loadBalancerSourceRanges": ["10.0.0.0/8"]}},
            }
        },
        "need serviceType LoadBalancer",
    ),
    (
        {"proxy": {"podDisruptionBudget": {"maxUnavailable": 1, "minAvailable": 1}}},
        "podDisruptionBudget takes maxUnavailable or minAvailable, not both",
    ),
    ({"proxy": {"resources": {"limits": {"memory": "lots"}}}}, "should match"),
    ({"writer": {"resources": {"requests": {"memroy": "1Gi"}}}}, "a resource is cpu, memory"),
    ({"jobs": {"resources": {"requests": {"cpu": "1 core"}}}}, "should match"),
    (
        {
            "podTemplate": {
                "affinity": {
                    "podAntiAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]
                    }
                }
            }
        },
        "topologyKey: Required value",
    ),
    (
        {"podTemplate": {"tolerations": [{"key": "k", "operator": "Exist"}]}},
        'supported values: "Exists", "Equal"',
    ),
]


@pytest.mark.parametrize(("change", "message"), MISTAKES)
def test_mistakes_are_refused_with_a_clear_message(
    installed_chart: ControlPlane, change: dict[str, Any], message: str
) -> None:
    out = installed_chart.apply(pool("mistaken", **change), check=False)
    assert "is invalid" in out and message in out, out
    assert installed_chart.get("stratumpool", "mistaken", "default") is None


def test_changing_the_shard_list_points_to_reshard(installed_chart: ControlPlane) -> None:
    vitess: dict[str, Any] = {
        "persistence": {"backend": "vitess", "databaseUrlSecret": {"name": "db"}},
        "vitess": {"keyspace": "shares", "vtctldAddress": "vtctld:15999"},
    }
    installed_chart.apply(pool("sharded", **vitess))
    changed = copy.deepcopy(vitess)
    changed["vitess"]["shards"] = ["-40", "40-80", "80-"]
    out = installed_chart.apply(pool("sharded", **changed), check=False)
    assert "Reshard workflow" in out, out
    # following a completed Reshard: the new list with reshardedTo saying so, one edit
    changed["vitess"]["reshardedTo"] = ["-40", "40-80", "80-"]
    uid = installed_chart.get("stratumpool", "sharded", "default")["metadata"]["uid"]  # type: ignore[index]
    installed_chart.apply(pool("sharded", **changed))
    stored = installed_chart.get("stratumpool", "sharded", "default")
    assert stored is not None and stored["metadata"]["uid"] == uid, "the same pool, kept"
    assert stored["spec"]["vitess"]["shards"] == ["-40", "40-80", "80-"]


def test_a_sqlite_pool_needs_no_replica_count(installed_chart: ControlPlane) -> None:
    installed_chart.apply(pool("local", persistence={"backend": "sqlite"}))
    stored = installed_chart.get("stratumpool", "local", "default")
    assert stored is not None and parse_spec(stored["spec"]).proxy.replicas == 1


def _undescribed(schema: dict[str, Any], path: str) -> list[str]:
    missing = [] if schema.get("description") or path == "sp.metadata" else [path]
    for key, sub in schema.get("properties", {}).items():
        missing += _undescribed(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict) and schema["items"].get("properties"):
        missing += _undescribed(schema["items"], f"{path}[]")
    return missing


def test_every_field_is_described(installed_chart: ControlPlane) -> None:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _undescribed(schema, "sp") == []
    explained = installed_chart.kubectl("explain", "sp.spec.proxy.replicas")
    assert "How many proxy pods" in explained, explained


def _defaults(schema: dict[str, Any], path: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, sub in schema.get("properties", {}).items():
        here = f"{path}.{key}" if path else key
        if "default" in sub and sub["default"] != {}:
            found[here] = sub["default"]
        found.update(_defaults(sub, here))
    return found


def test_the_spec_model_has_the_crds_defaults() -> None:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    minimal = {
        "upstreams": ["stratum+tcp://p:1"],
        "persistence": {
            "backend": "vitess",
            "databaseUrlSecret": {"name": "d"},
            "migrationUrlSecret": {"name": "m"},
            "retentionUrlSecret": {"name": "r"},
        },
        "vitess": {"keyspace": "k", "vtctldAddress": "v:1"},
        "upstreamCredentials": {"name": "c"},
    }
    model = parse_spec(minimal).model_dump(by_alias=True)
    for path, default in _defaults(schema).items():
        value: Any = model
        for part in path.split("."):
            value = value[part]
        assert value == default, f"spec.{path}: CRD default {default!r}, model {value!r}"
    assert isinstance(parse_spec(minimal), StratumPoolSpec)
    # and the writer's own default, which the operator restates (it does not import it)
    from stratum_writer.config import DEFAULT_BATCH_SIZE

    assert model["persistence"]["batchSize"] == DEFAULT_BATCH_SIZE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"size": "50Gi"}, "spool.size is fixed once the claims exist"),
        ({"ephemeral": True}, "spool.ephemeral can't change on an existing pool"),
        ({"storageClassName": "fast"}, "spool.storageClassName is fixed"),
    ],
)
def test_the_spool_claims_template_cant_change_under_running_pods(
    installed_chart: ControlPlane, change: dict[str, Any], message: str
) -> None:
    name = f"spool-{next(iter(change)).lower()}"
    installed_chart.apply(pool(name, spool={"size": "10Gi"}))
    out = installed_chart.apply(pool(name, spool={"size": "10Gi", **change}), check=False)
    assert message in out, out


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"proxy": {"resources": {"limts": {"memory": "1Gi"}}}}, "spec.proxy.resources.limts"),
        (
            {"podTemplate": {"affinity": {"nodeAfinity": {}}}},
            "spec.podTemplate.affinity.nodeAfinity",
        ),
        (
            {"proxy": {"serviceTemplate": {"spec": {"selector": {"app": "x"}}}}},
            "spec.proxy.serviceTemplate.spec.selector",
        ),
    ],
)
def test_a_typo_in_a_typed_subtree_is_refused_not_dropped(
    installed_chart: ControlPlane, change: dict[str, Any], field: str
) -> None:
    """kubectl asks for strict field validation: an unknown field is an error, not a
    field silently pruned (other clients are warned, and it is pruned)."""
    out = installed_chart.apply(pool("typo", **change), check=False)
    assert f'unknown field "{field}"' in out, out
    assert installed_chart.get("stratumpool", "typo", "default") is None


SELECTOR = {
    "matchLabels": {"stratum.io/pool": "typed"},
    "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}],
}
NODE_TERM = {
    "matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}],
    "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}],
}
POD_TERM = {
    "labelSelector": SELECTOR,
    "namespaceSelector": {"matchLabels": {"a": "b"}},
    "namespaces": ["x"],
    "topologyKey": "kubernetes.io/hostname",
    "matchLabelKeys": ["pod-template-hash"],
    "mismatchLabelKeys": ["other"],
}
POD_AFFINITY = {
    "requiredDuringSchedulingIgnoredDuringExecution": [POD_TERM],
    "preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "podAffinityTerm": POD_TERM}
    ],
}
SCHEDULING = {
    "nodeSelector": {"pool": "miners"},
    "tolerations": [
        {
            "key": "dedicated",
            "operator": "Equal",
            "value": "mining",
            "effect": "NoExecute",
            "tolerationSeconds": 30,
        }
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [NODE_TERM]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": NODE_TERM}
            ],
        },
        "podAffinity": POD_AFFINITY,
        "podAntiAffinity": POD_AFFINITY,
    },
    "topologySpreadConstraints": [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": SELECTOR,
            "minDomains": 2,
            "matchLabelKeys": ["controller-revision-hash"],
            "nodeAffinityPolicy": "Honor",
            "nodeTaintsPolicy": "Ignore",
        }
    ],
    "priorityClassName": "mining",
    "imagePullSecrets": [{"name": "registry"}],
    "imagePullPolicy": "Always",
}
SERVICE_TEMPLATE = {
    "metadata": {"labels": {"team": "farms"},
                 "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}},
    "spec": {"externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Local",
             "loadBalancerIP": "203.0.113.7", "loadBalancerClass": "example.com/lb",
             "loadBalancerSourceRanges": ["203.0.113.0/24"],
             "allocateLoadBalancerNodePorts": False, "healthCheckNodePort": 30100,
             "ipFamilies": ["IPv4", "IPv6"], "ipFamilyPolicy": "PreferDualStack",
             "externalIPs": ["198.51.100.1"], "sessionAffinity": "ClientIP"},
}  # fmt: skip


def test_every_typed_scheduling_and_service_field_is_stored_as_given(
    installed_chart: ControlPlane,
) -> None:
    """Each typed field a user may set is kept whole: none is pruned by a schema slip."""
    spec = {"podTemplate": SCHEDULING, "proxy": {"serviceTemplate": SERVICE_TEMPLATE,
                                                 "nodePort": 30333},
            "jobs": {"resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Gi"}}}}  # fmt: skip
    stored = json.loads(installed_chart.kubectl("create", "-f", "-", "-o", "json",
                                                stdin=json.dumps(pool("typed", **spec))))  # fmt: skip
    for key, value in SCHEDULING.items():
        assert stored["spec"]["podTemplate"][key] == value, key
    assert stored["spec"]["proxy"]["serviceTemplate"] == SERVICE_TEMPLATE
    assert stored["spec"]["jobs"] == spec["jobs"]
