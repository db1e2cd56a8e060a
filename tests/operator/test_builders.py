"""Pure builders: manifests from a spec, no cluster involved."""

from __future__ import annotations

import json
from typing import Any

from stratum_operator.builders import config_hash, desired_objects
from stratum_operator.spec import default_image, parse_spec


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
