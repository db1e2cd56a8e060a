"""What a user declares: the ``StratumPool`` spec, parsed.

The API server validates and defaults the spec from the CRD's schema (``crds/``) before
the operator sees it; these models give the builders typed fields and the same
defaults, so builders can be called on a hand-written spec in tests. A test walks the
CRD's schema and fails if a default here and there disagree.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stratum_operator import __version__

DEFAULT_REPLICAS = 2
TLS_KEYS = ("tls.crt", "tls.key")  # a kubernetes.io/tls Secret's, as the proxy mounts them
IMAGE_REGISTRY = "ghcr.io/stratum-operator"
# vtctldclient for the keyspace Job: Vitess's own image, the release our tests run
VTCTLDCLIENT_IMAGE = "vitess/lite:v24.0.4"


def default_image(component: str) -> str:
    """Our images, tagged with the operator's own version: they are released together."""
    return f"{IMAGE_REGISTRY}/stratum-{component}:{__version__}"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class SecretKeyRef(_Model):
    name: str
    key: str = "url"


class UpstreamCredentials(_Model):
    """The pool account logins are rewritten to; from a Secret, never from the spec."""

    name: str
    account_key: str = Field("account", alias="accountKey")
    password_key: str = Field("password", alias="passwordKey")


class ProxySpec(_Model):
    replicas: int = 0  # unset: StratumPoolSpec makes it 2, or 1 for sqlite
    image: str | None = None
    port: int = 3333
    metrics_port: int = Field(9101, alias="metricsPort")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "LoadBalancer", alias="serviceType"
    )
    tls_secret: str | None = Field(None, alias="tlsSecret")
    local_reject: bool = Field(True, alias="localReject")
    submit_timeout_seconds: int = Field(30, alias="submitTimeoutSeconds")
    max_connections: int = Field(100_000, alias="maxConnections")
    # new miner connections a second from one address (a farm behind one NAT is one address)
    max_new_connections_per_address_per_second: int = Field(
        20, alias="maxNewConnectionsPerAddressPerSecond"
    )
    progress_deadline_seconds: int = Field(600, alias="progressDeadlineSeconds")
    resources: dict[str, Any] | None = None


class PersistenceSpec(_Model):
    """Three credentials, least privilege each (docs/writer.md has the grants): the
    writers' (``databaseUrlSecret``), the migration Job's (DDL), the retention
    CronJob's; each of the last two defaults to the one before it."""

    backend: Literal["postgres", "mysql", "vitess", "sqlite"]
    database_url_secret: SecretKeyRef | None = Field(None, alias="databaseUrlSecret")
    migration_url_secret: SecretKeyRef | None = Field(None, alias="migrationUrlSecret")
    retention_url_secret: SecretKeyRef | None = Field(None, alias="retentionUrlSecret")
    batch_size: int = Field(10_000, alias="batchSize")  # the writer's DEFAULT_BATCH_SIZE
    batch_timeout_ms: int = Field(200, alias="batchTimeoutMs")

    @property
    def migration_secret(self) -> SecretKeyRef | None:
        return self.migration_url_secret or self.database_url_secret

    @property
    def retention_secret(self) -> SecretKeyRef | None:
        return self.retention_url_secret or self.migration_secret


class SpoolSpec(_Model):
    """Each proxy pod's spool: a claim that outlives the pod, unless ``ephemeral``."""

    size: str = "1Gi"
    storage_class_name: str | None = Field(None, alias="storageClassName")
    ephemeral: bool = False


class VitessSpec(_Model):
    keyspace: str
    shards: list[str] = ["-80", "80-"]
    resharded_to: list[str] | None = Field(None, alias="reshardedTo")
    vtctld_address: str = Field(alias="vtctldAddress")
    vitess_cluster: str | None = Field(None, alias="vitessCluster")
    patch_vitess_cluster: bool = Field(False, alias="patchVitessCluster")
    vtctldclient_image: str = Field(VTCTLDCLIENT_IMAGE, alias="vtctldclientImage")


class WriterSpec(_Model):
    image: str | None = None
    metrics_port: int = Field(9102, alias="metricsPort")
    min_workers: int = Field(1, alias="minWorkers")
    max_workers: int = Field(8, alias="maxWorkers")
    target_queue_depth: int = Field(20_000, alias="targetQueueDepth")
    scale_down_stabilization_seconds: int = Field(300, alias="scaleDownStabilizationSeconds")
    resources: dict[str, Any] | None = None


class RetentionSpec(_Model):
    """What leaves the database, in whole UTC days kept (today is always kept too)."""

    enabled: bool = True
    share_days: int = Field(90, alias="shareDays")
    rollup_days: int = Field(400, alias="rollupDays")
    schedule: str = "17 * * * *"


class PodTemplateSpec(_Model):
    node_selector: dict[str, str] | None = Field(None, alias="nodeSelector")
    tolerations: list[dict[str, Any]] | None = None
    affinity: dict[str, Any] | None = None
    annotations: dict[str, str] | None = None
    termination_grace_period_seconds: int = Field(60, alias="terminationGracePeriodSeconds")


class StratumPoolSpec(_Model):
    upstreams: list[str]
    upstream_credentials: UpstreamCredentials | None = Field(None, alias="upstreamCredentials")
    routes: dict[str, list[str]] = {}
    proxy: ProxySpec = ProxySpec()
    persistence: PersistenceSpec
    spool: SpoolSpec = SpoolSpec()
    vitess: VitessSpec | None = None
    writer: WriterSpec = WriterSpec()
    retention: RetentionSpec = RetentionSpec()
    pod_template: PodTemplateSpec = Field(PodTemplateSpec(), alias="podTemplate")

    @model_validator(mode="after")
    def _default_replicas(self) -> StratumPoolSpec:
        """2 proxies by default; 1 for sqlite, the only count it allows (the CRD can't
        default one field on another's value, so the default is here, and in status)."""
        if not self.proxy.replicas:
            replicas = 1 if self.persistence.backend == "sqlite" else DEFAULT_REPLICAS
            object.__setattr__(self, "proxy", self.proxy.model_copy(update={"replicas": replicas}))
        return self

    @property
    def proxy_image(self) -> str:
        return self.proxy.image or default_image("proxy")

    @property
    def writer_image(self) -> str:
        return self.writer.image or default_image("writer")

    def secret_keys(self) -> dict[str, list[str]]:
        """Every Secret the pods read, with the keys they read from it; a missing one
        holds the rollout with a condition."""
        keys: dict[str, list[str]] = {}
        persistence = self.persistence
        for ref in (persistence.database_url_secret, persistence.migration_url_secret,
                    persistence.retention_url_secret):  # fmt: skip
            if ref is not None and ref.key not in keys.get(ref.name, []):
                keys.setdefault(ref.name, []).append(ref.key)
        if self.upstream_credentials is not None:
            creds = self.upstream_credentials
            keys.setdefault(creds.name, []).extend([creds.account_key, creds.password_key])
        if self.proxy.tls_secret is not None:
            keys.setdefault(self.proxy.tls_secret, []).extend(TLS_KEYS)
        return keys


def parse_spec(spec: dict[str, Any]) -> StratumPoolSpec:
    return StratumPoolSpec.model_validate(spec)
