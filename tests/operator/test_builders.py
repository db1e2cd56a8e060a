"""Pure builders: manifests from a spec, no cluster involved."""

from __future__ import annotations

import json
from typing import Any

from stratum_operator.builders import config_hash, desired_objects
from stratum_operator.spec import default_image, parse_spec
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
    assert a["spec"]["template"]["spec"]["containers"][0]["image"] == default_image("writer")


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
    assert (
        pod["securityContext"]["runAsNonRoot"]
        and container["securityContext"]["readOnlyRootFilesystem"]
    )


def test_the_drain_jobs_exit_codes_are_the_writers() -> None:
    """The operator can't import the writer (another image), so the codes are restated
    here and pinned together."""
    from stratum_operator.builders import drain
    from stratum_operator.builders.writer_exit import WriterExit
    from stratum_writer.exits import ExitCode

    assert {c.name: c.value for c in WriterExit} == {c.name: c.value for c in ExitCode}
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


def test_the_per_address_connection_rate_reaches_a_config_the_proxy_accepts() -> None:
    for body, rate in (({}, 20), ({"proxy": {"maxNewConnectionsPerAddressPerSecond": 200}}, 200)):
        config = desired_objects("p", "ns", spec(**body)).config
        proxy = ProxyConfig.model_validate(json.loads(config["data"]["proxy.json"]))
        assert proxy.max_new_connections_per_ip_per_s == rate
    # the operator's default is the proxy's own
    assert ProxyConfig.model_fields["max_new_connections_per_ip_per_s"].default == 20
