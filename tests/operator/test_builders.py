"""Pure builders: manifests from a spec, no cluster involved."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stratum_operator.builders import config_hash, desired_objects
from stratum_operator.images import release_image
from stratum_operator.spec import parse_spec
from stratum_proxy.config import ProxyConfig


def spec(**over: Any) -> Any:
    body: dict[str, Any] = {
        "upstreams": ["stratum+tcp://pool:3333"],
        "persistence": {"backend": "postgres", "databaseUrlSecret": {"name": "db"}},
    }
    body.update(over)
    return parse_spec(body)


def pod_of(children: Any) -> dict[str, Any]:
    return dict(children.workload[0]["spec"]["template"]["spec"])


def test_no_credential_ever_lands_in_the_configmap() -> None:
    s = spec(upstreamCredentials={"name": "farm"})
    children = desired_objects("p", "ns", s)
    text = json.dumps(children.config)
    assert "postgresql://" not in text and "password" not in text
    proxy = pod_of(children)["containers"][0]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in proxy["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    assert refs["STRATUM_PROXY_UPSTREAM_ACCOUNT"] == {"name": "farm", "key": "account"}
    volumes = {v["name"]: v for v in pod_of(children)["volumes"]}
    assert volumes["database"]["secret"]["items"] == [{"key": "url", "path": "url"}]


def test_the_proxys_submit_rate_and_worker_separator_reach_a_config_it_accepts() -> None:
    chosen = spec(upstreamCredentials={"name": "farm", "workerSeparator": "--"},
                  proxy={"maxSubmitsPerSecond": 40, "submitRateWindowSeconds": 30})  # fmt: skip
    data = desired_objects("p", "ns", chosen).config["data"]["proxy.json"]
    config = ProxyConfig.model_validate(json.loads(data))  # it refuses keys it doesn't know
    assert (config.max_submits_per_s, config.submit_rate_window_s) == (40, 30)
    assert config.upstream_worker_separator == "--"
    # the CRD's defaults are the proxy's own: restated there, pinned here
    data = desired_objects("p", "ns", spec(upstreamCredentials={"name": "farm"})).config["data"]
    defaults = ProxyConfig.model_validate(json.loads(data["proxy.json"]))
    fields = ProxyConfig.model_fields
    for key in ("max_submits_per_s", "submit_rate_window_s", "upstream_worker_separator"):
        assert getattr(defaults, key) == fields[key].default, key


def test_sqlite_has_no_migration_job_and_the_writer_migrates_itself() -> None:
    children = desired_objects(
        "p", "ns", spec(persistence={"backend": "sqlite"}, proxy={"replicas": 1})
    )
    assert children.migration is None
    writer = pod_of(children)["containers"][1]
    assert "--migrate" in writer["args"]
    assert writer["env"] == [
        {"name": "STRATUM_DATABASE_URL", "value": "sqlite:////var/spool/stratum/shares.db"}
    ]


def test_a_settings_change_changes_the_pod_template_hash_and_nothing_else_does() -> None:
    base = spec()
    assert config_hash("p", "ns", base) != config_hash(
        "p",
        "ns",
        spec(
            persistence={
                "backend": "postgres",
                "databaseUrlSecret": {"name": "db"},
                "batchSize": 100,
            }
        ),
    )
    assert config_hash("p", "ns", base) == config_hash("p", "ns", spec(proxy={"replicas": 7}))


def test_migration_job_is_named_by_what_it_applies() -> None:
    a = desired_objects("p", "ns", spec()).migration
    b = desired_objects("p", "ns", spec(writer={"image": "registry.local/writer:2"})).migration
    assert a is not None and b is not None
    assert a["metadata"]["name"] != b["metadata"]["name"]
    assert a["metadata"]["name"] == desired_objects("p", "ns", spec()).migration["metadata"]["name"]  # type: ignore[index]
    assert a["spec"]["template"]["spec"]["containers"][0]["image"] == release_image("writer")


def test_tls_and_pod_overrides_reach_the_pod() -> None:
    s = spec(
        proxy={"tlsSecret": "miners-tls"},
        podTemplate={
            "nodeSelector": {"pool": "a"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
        },
    )
    pod = pod_of(desired_objects("p", "ns", s))
    assert pod["nodeSelector"] == {"pool": "a"} and pod["tolerations"][0]["key"] == "k"
    assert any(m["name"] == "tls" for m in pod["containers"][0]["volumeMounts"])
    settings = json.loads(desired_objects("p", "ns", s).config["data"]["proxy.json"])
    assert settings["tls_cert_file"] == "/etc/stratum/tls/tls.crt"


def test_each_proxy_pod_gets_a_spool_claim_kubernetes_never_deletes() -> None:
    sts = desired_objects("p", "ns", spec(spool={"size": "20Gi", "storageClassName": "fast"}))
    sts_ = sts.workload[0]
    assert sts_["kind"] == "StatefulSet" and sts_["spec"]["serviceName"] == "p-proxy-pods"
    (claim,) = sts_["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "spool"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert sts_["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain", "whenScaled": "Retain"}  # fmt: skip
    assert "spool" not in {v["name"] for v in pod_of(sts)["volumes"]}, "the claim, not a volume"
    settings = json.loads(sts.config["data"]["proxy.json"])
    assert settings["spool_max_bytes"] == 20 * 2**30 * 9 // 10
    headless = sts.workload[1]
    assert headless["spec"]["clusterIP"] == "None"


def test_an_ephemeral_spool_is_an_emptydir_and_no_claim() -> None:
    children = desired_objects("p", "ns", spec(spool={"ephemeral": True, "size": "2Gi"}))
    sts = children.workload[0]
    assert "volumeClaimTemplates" not in sts["spec"]
    volumes = {v["name"]: v for v in pod_of(children)["volumes"]}
    assert volumes["spool"] == {"name": "spool", "emptyDir": {"sizeLimit": "2Gi"}}


def test_the_drain_job_mounts_the_claim_and_never_gives_up_on_shares() -> None:
    from stratum_operator.builders.drain import build_drain_job

    job = build_drain_job(
        "p", "ns", spec(), ordinal=2, claim="spool-p-proxy-2", claim_uid="abcdef123456"
    )
    assert job["metadata"]["name"] == "p-drain-2-abcdef12"
    assert "activeDeadlineSeconds" not in job["spec"] and job["spec"]["backoffLimit"] >= 100
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["spool"]["persistentVolumeClaim"] == {"claimName": "spool-p-proxy-2"}
    (container,) = pod["containers"]
    assert container["args"][-3:] == ["drain", "--summary-file", "/dev/termination-log"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    statefulset = desired_objects("p", "ns", spec()).workload[0]["spec"]["template"]["spec"]
    writer_mounts = {
        m["name"]: m["mountPath"] for m in statefulset["containers"][1]["volumeMounts"]
    }
    for name in ("config", "spool", "tmp", "database"):  # one pod fact, the same paths
        assert mounts[name] == writer_mounts[name]
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    codes = rules[1]["onExitCodes"]["values"]
    assert 4 in codes and codes == sorted(codes), "dead letters keep the claim; in order"
    assert 6 in codes, "so do damaged spool bytes in quarantine"
    assert (
        pod["securityContext"]["runAsNonRoot"]
        and container["securityContext"]["readOnlyRootFilesystem"]
    )


def test_the_drain_jobs_exit_codes_are_the_writers() -> None:
    """The operator can't import the writer (another image), so the codes are restated
    here and pinned together."""
    from sharelog.spool.format import QUARANTINE
    from stratum_operator.builders import drain
    from stratum_operator.builders.writer_exit import SPOOL_QUARANTINE, WriterExit
    from stratum_writer.exits import ExitCode

    assert {c.name: c.value for c in WriterExit} == {c.name: c.value for c in ExitCode}
    assert SPOOL_QUARANTINE == QUARANTINE
    job = drain.build_drain_job("p", "ns", spec(), ordinal=0, claim="c", claim_uid="u" * 8)
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][2] == "drain"


def test_retention_is_a_cronjob_one_run_at_a_time_keeping_its_reports() -> None:
    children = desired_objects("p", "ns", spec(retention={"shareDays": 30, "rollupDays": 365}))
    cron = children.retention
    assert cron is not None and cron["kind"] == "CronJob"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["schedule"] == "17 * * * *" and cron["spec"]["timeZone"] == "Etc/UTC"
    job = cron["spec"]["jobTemplate"]["spec"]
    (container,) = job["template"]["spec"]["containers"]
    args = container["args"]
    assert args[2:7] == ["retain", "--share-days", "30", "--rollup-days", "365"]
    assert args[-2:] == ["--summary-file", "/dev/termination-log"]  # its report, for status
    assert "ttlSecondsAfterFinished" not in job  # the CronJob's history keeps the runs
    assert cron["spec"]["failedJobsHistoryLimit"] >= 1  # a failed run stays as evidence
    assert sorted(job["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"]) == [2, 5]
    # a retention change never rolls the proxies: it is not in their configuration
    other = desired_objects("p", "ns", spec(retention={"shareDays": 60, "rollupDays": 365}))
    assert other.config == children.config


def test_sqlite_retains_in_its_writer_and_retention_can_be_off() -> None:
    lite = desired_objects("p", "ns", spec(persistence={"backend": "sqlite"}))
    assert lite.retention is None
    settings = json.loads(lite.config["data"]["writer.json"])
    assert (settings["retention_share_days"], settings["retention_rollup_days"]) == (90, 400)
    assert desired_objects("p", "ns", spec(retention={"enabled": False})).retention is None


def test_the_dead_letter_cap_reaches_the_writer_as_a_setting_it_takes() -> None:
    from stratum_writer.config import WriterConfig

    capped = desired_objects("p", "ns", spec(spool={"size": "2Gi", "deadLetterLimit": "100Mi"}))
    settings = json.loads(capped.config["data"]["writer.json"])
    assert settings["dead_letter_max_bytes"] == 100 << 20
    assert WriterConfig(**settings).dead_letter_max_bytes == 100 << 20
    plain = json.loads(desired_objects("p", "ns", spec()).config["data"]["writer.json"])
    assert "dead_letter_max_bytes" not in plain  # the writer's own default


def test_each_job_connects_with_its_own_credentials() -> None:
    def secret_of(obj: dict[str, Any]) -> str:
        template = obj["spec"].get("jobTemplate", obj)["spec"]["template"]["spec"]
        (db,) = [v for v in template["volumes"] if v["name"] == "database"]
        return str(db["secret"]["secretName"])

    persistence = {"backend": "postgres", "databaseUrlSecret": {"name": "writer"},
                   "migrationUrlSecret": {"name": "owner"}}  # fmt: skip
    children = desired_objects("p", "ns", spec(persistence=persistence))
    assert children.migration is not None and children.retention is not None
    assert secret_of(children.migration) == "owner"  # DDL
    assert secret_of(children.retention) == "owner"  # defaults to the migration's
    pod = pod_of(children)
    (db,) = [v for v in pod["volumes"] if v["name"] == "database"]
    assert db["secret"]["secretName"] == "writer"
    both = desired_objects(
        "p", "ns", spec(persistence={**persistence, "retentionUrlSecret": {"name": "ret"}})
    )
    assert both.retention is not None and secret_of(both.retention) == "ret"
    assert set(spec(persistence=persistence).secret_keys()) == {"writer", "owner"}


def test_annotation_scrapers_are_pointed_at_the_pod_path_where_the_proxy_serves_the_writer() -> (
    None
):
    """The path is restated in the operator (it does not depend on sharelog): pinned here."""
    from sharelog.pod_metrics import PATH
    from stratum_operator.builders.config import POD_METRICS_PATH

    assert POD_METRICS_PATH.encode() == PATH
    s = spec(proxy={"metricsPort": 9201}, writer={"metricsPort": 9202})
    children = desired_objects("p", "ns", s)
    annotations = children.workload[0]["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (
        "9201", POD_METRICS_PATH)  # fmt: skip
    proxy = json.loads(children.config["data"]["proxy.json"])
    assert proxy["sidecar_metrics"] == {"writer": "127.0.0.1:9202"}


def test_the_service_template_is_merged_over_the_defaults_and_the_selector_stays_ours() -> None:
    template = {
        "metadata": {
            "labels": {"team": "farms", "app.kubernetes.io/managed-by": "someone"},
            "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
        },
        # a hand-written spec may say anything: the CRD prunes these; the operator's win
        "spec": {
            "loadBalancerSourceRanges": ["203.0.113.0/24"],
            "loadBalancerClass": "service.k8s.aws/nlb",
            "ipFamilyPolicy": "PreferDualStack",
            "selector": {"app": "elsewhere"},
            "ports": [],
            "type": "ClusterIP",
        },
    }
    children = desired_objects("p", "ns", spec(proxy={"serviceTemplate": template,
                                                       "nodePort": 30333}))  # fmt: skip
    service = children.workload[2]
    meta, body = service["metadata"], service["spec"]
    assert meta["annotations"] == {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
    assert meta["labels"]["team"] == "farms"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "stratum-operator", "found by it"
    assert body["type"] == "LoadBalancer" and body["selector"] == {
        "stratum.io/pool": "p", "app.kubernetes.io/component": "proxy"}  # fmt: skip
    assert body["ports"] == [{"name": "stratum", "port": 3333, "targetPort": "stratum",
                              "protocol": "TCP", "nodePort": 30333}]  # fmt: skip
    assert body["externalTrafficPolicy"] == "Local", "kept unless the template sets it"
    assert body["loadBalancerSourceRanges"] == ["203.0.113.0/24"]
    assert body["ipFamilyPolicy"] == "PreferDualStack"
    cluster = spec(proxy={"serviceTemplate": {"spec": {"externalTrafficPolicy": "Cluster"}}})
    assert desired_objects("p", "ns", cluster).workload[2]["spec"]["externalTrafficPolicy"] == (
        "Cluster")  # fmt: skip
    plain = desired_objects("p", "ns", spec()).workload[2]
    assert "annotations" not in plain["metadata"] and "nodePort" not in plain["spec"]["ports"][0]


def test_proxy_pods_spread_across_nodes_by_default_and_an_override_wins() -> None:
    spread = pod_of(desired_objects("p", "ns", spec()))["topologySpreadConstraints"]
    assert spread == [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                       "whenUnsatisfiable": "ScheduleAnyway",
                       "labelSelector": {"matchLabels": {"stratum.io/pool": "p",
                                                         "app.kubernetes.io/component": "proxy"}}}]  # fmt: skip
    zones = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
              "whenUnsatisfiable": "DoNotSchedule",
              "labelSelector": {"matchLabels": {"stratum.io/pool": "p"}}}]  # fmt: skip
    own = pod_of(desired_objects("p", "ns", spec(podTemplate={"topologySpreadConstraints": zones})))
    assert own["topologySpreadConstraints"] == zones
    none = pod_of(desired_objects("p", "ns", spec(podTemplate={"topologySpreadConstraints": []})))
    assert "topologySpreadConstraints" not in none


def test_priority_pull_secrets_and_the_disruption_budget_are_the_pools() -> None:
    s = spec(
        podTemplate={"priorityClassName": "mining-critical", "imagePullSecrets": [{"name": "r"}]},
        proxy={"podDisruptionBudget": {"minAvailable": "50%"}},
    )
    children = desired_objects("p", "ns", s)
    pod = pod_of(children)
    assert pod["priorityClassName"] == "mining-critical"
    assert pod["imagePullSecrets"] == [{"name": "r"}]
    pdb = children.workload[3]["spec"]
    assert pdb["minAvailable"] == "50%" and "maxUnavailable" not in pdb
    assert desired_objects("p", "ns", spec()).workload[3]["spec"]["maxUnavailable"] == 1
    two = spec(proxy={"podDisruptionBudget": {"maxUnavailable": 2}})
    assert desired_objects("p", "ns", two).workload[3]["spec"]["maxUnavailable"] == 2


TAINTED: dict[str, Any] = {
    "nodeSelector": {"pool": "miners"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "mining",
                     "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["nvme"]}]}]}},
        "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname",
             "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "proxy"}}}]},
    },
    "priorityClassName": "mining",
    "imagePullSecrets": [{"name": "registry"}],
}  # fmt: skip


def test_a_drain_job_lands_where_the_proxies_may_with_the_writers_resources() -> None:
    from stratum_operator.builders.drain import build_drain_job

    writer = {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
    s = spec(podTemplate=TAINTED, writer={"resources": writer})
    job = build_drain_job("p", "ns", s, ordinal=1, claim="spool-p-proxy-1", claim_uid="u" * 8)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == TAINTED["nodeSelector"]
    assert pod["tolerations"] == TAINTED["tolerations"]
    assert pod["priorityClassName"] == "mining" and pod["imagePullSecrets"] == [
        {"name": "registry"}
    ]
    # the nodes the pool may use; never the proxies' placement beside each other, which
    # could keep it off the one node its local volume is on
    assert pod["affinity"] == {"nodeAffinity": TAINTED["affinity"]["nodeAffinity"]}
    assert "topologySpreadConstraints" not in pod
    assert pod["containers"][0]["resources"] == writer


def test_every_other_job_requests_resources_and_lands_where_the_proxies_may() -> None:
    jobs = {"requests": {"cpu": "100m", "memory": "64Mi"}}
    s = spec(podTemplate=TAINTED, jobs={"resources": jobs})
    children = desired_objects("p", "ns", s)
    assert children.migration is not None and children.retention is not None
    pods = [children.migration["spec"]["template"]["spec"],
            children.retention["spec"]["jobTemplate"]["spec"]["template"]["spec"]]  # fmt: skip
    for pod in pods:
        assert pod["tolerations"] == TAINTED["tolerations"]
        assert pod["nodeSelector"] == TAINTED["nodeSelector"]
        assert pod["affinity"] == {"nodeAffinity": TAINTED["affinity"]["nodeAffinity"]}
        assert pod["priorityClassName"] == "mining"
        assert [c["resources"] for c in pod["containers"]] == [jobs]
    default = desired_objects("p", "ns", spec()).migration
    assert default is not None
    (container,) = default["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}


def test_the_operators_image_defaults_reach_every_container_and_a_pool_pins_its_own() -> None:
    from stratum_operator.images import ImageDefaults

    env = {
        "STRATUM_OPERATOR_PROXY_IMAGE": "registry.example.com/m/stratum-proxy:9",
        "STRATUM_OPERATOR_WRITER_IMAGE": "registry.example.com/m/stratum-writer@sha256:" + "a" * 64,
        "STRATUM_OPERATOR_IMAGE_PULL_POLICY": "Always",
    }
    images = ImageDefaults.from_env(env)
    body = {"upstreams": ["stratum+tcp://pool:3333"],
            "persistence": {"backend": "postgres", "databaseUrlSecret": {"name": "db"}}}  # fmt: skip
    children = desired_objects("p", "ns", parse_spec(body, images))
    assert children.migration is not None and children.retention is not None
    pods = [pod_of(children), children.migration["spec"]["template"]["spec"],
            children.retention["spec"]["jobTemplate"]["spec"]["template"]["spec"]]  # fmt: skip
    containers = [c for pod in pods for c in pod["containers"]]
    assert {c["image"] for c in containers} == {
        env["STRATUM_OPERATOR_PROXY_IMAGE"], env["STRATUM_OPERATOR_WRITER_IMAGE"]}  # fmt: skip
    assert {c["imagePullPolicy"] for c in containers} == {"Always"}
    pinned = parse_spec({**body, "writer": {"image": "mine/writer:1"},
                         "podTemplate": {"imagePullPolicy": "IfNotPresent"}}, images)  # fmt: skip
    writer = pod_of(desired_objects("p", "ns", pinned))["containers"][1]
    assert (writer["image"], writer["imagePullPolicy"]) == ("mine/writer:1", "IfNotPresent")
    assert ImageDefaults.from_env({}).proxy == release_image("proxy")
    with pytest.raises(ValueError, match="STRATUM_OPERATOR_IMAGE_PULL_POLICY=Sometimes"):
        ImageDefaults.from_env({"STRATUM_OPERATOR_IMAGE_PULL_POLICY": "Sometimes"})


def test_the_per_address_connection_rate_reaches_a_config_the_proxy_accepts() -> None:
    for body, rate in (({}, 20), ({"proxy": {"maxNewConnectionsPerAddressPerSecond": 200}}, 200)):
        config = desired_objects("p", "ns", spec(**body)).config
        proxy = ProxyConfig.model_validate(json.loads(config["data"]["proxy.json"]))
        assert proxy.max_new_connections_per_ip_per_s == rate
    # the operator's default is the proxy's own
    assert ProxyConfig.model_fields["max_new_connections_per_ip_per_s"].default == 20
