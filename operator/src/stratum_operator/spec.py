"""What a user declares: the ``StratumPool`` spec, parsed.

The API server validates and defaults the spec from the CRD's schema (``crds/``) before
the operator sees it; these models give the builders typed fields and the same
defaults, so builders can be called on a hand-written spec in tests. A test walks the
CRD's schema and fails if a default here and there disagree.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from stratum_operator.images import RELEASE, ImageDefaults, PullPolicy

DEFAULT_REPLICAS = 2
TLS_KEYS = ("tls.crt", "tls.key")  # a kubernetes.io/tls Secret's, as the proxy mounts them
# vtctldclient for the keyspace Job: Vitess's own image, the release our tests run
VTCTLDCLIENT_IMAGE = "vitess/lite:v24.0.4"
# the migration, retention and keyspace Jobs' containers: enough for one writer command,
# and requests a ResourceQuota accepts
DEFAULT_JOB_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "50m", "memory": "128Mi"},
    "limits": {"memory": "512Mi"},
}


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
    # the upstream worker is <account>.<user><separator><rig> (the proxy's logins.py)
    worker_separator: str = Field("_", alias="workerSeparator")


class ServiceTemplateMetadata(_Model):
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class ServiceTemplate(_Model):
    """Merged over the miners' Service the operator builds, as CloudNativePG's Pooler
    does: its metadata and ``spec`` (a ServiceSpec's fields, typed by the CRD) over the
    defaults; the selector, the ports and the type stay the operator's."""

    metadata: ServiceTemplateMetadata = ServiceTemplateMetadata()
    spec: dict[str, Any] = {}


class DisruptionBudget(_Model):
    """At most one of the two (the CRD refuses both); neither: one pod at a time."""

    max_unavailable: int | str | None = Field(None, alias="maxUnavailable")
    min_available: int | str | None = Field(None, alias="minAvailable")


class ProxySpec(_Model):
    replicas: int = 0  # unset: StratumPoolSpec makes it 2, or 1 for sqlite
    image: str | None = None
    port: int = 3333
    node_port: int | None = Field(None, alias="nodePort")
    metrics_port: int = Field(9101, alias="metricsPort")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "LoadBalancer", alias="serviceType"
    )
    service_template: ServiceTemplate = Field(ServiceTemplate(), alias="serviceTemplate")
    pod_disruption_budget: DisruptionBudget = Field(DisruptionBudget(), alias="podDisruptionBudget")
    tls_secret: str | None = Field(None, alias="tlsSecret")
    local_reject: bool = Field(True, alias="localReject")
    submit_timeout_seconds: int = Field(30, alias="submitTimeoutSeconds")
    max_connections: int = Field(100_000, alias="maxConnections")
    max_submits_per_second: int = Field(100, alias="maxSubmitsPerSecond")
    submit_rate_window_seconds: int = Field(10, alias="submitRateWindowSeconds")
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
    # the writer's dead-letter file's cap (a quantity); None: the writer's own default
    dead_letter_limit: str | None = Field(None, alias="deadLetterLimit")


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
    # None: spread softly across nodes (builders/pod.py); [] : no spreading
    topology_spread_constraints: list[dict[str, Any]] | None = Field(
        None, alias="topologySpreadConstraints"
    )
    priority_class_name: str | None = Field(None, alias="priorityClassName")
    image_pull_secrets: list[dict[str, str]] | None = Field(None, alias="imagePullSecrets")
    image_pull_policy: PullPolicy | None = Field(None, alias="imagePullPolicy")
    annotations: dict[str, str] | None = None
    termination_grace_period_seconds: int = Field(60, alias="terminationGracePeriodSeconds")


class JobsSpec(_Model):
    """The migration, retention and keyspace Jobs' pods (drain Jobs run as the writer)."""

    resources: dict[str, Any] = DEFAULT_JOB_RESOURCES


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
    jobs: JobsSpec = JobsSpec()
    # the operator's defaults for what the spec leaves unset (parse_spec's ``images``)
    _images: ImageDefaults = PrivateAttr(RELEASE)

    @model_validator(mode="after")
    def _image_defaults(self, info: ValidationInfo) -> StratumPoolSpec:
        self._images = (info.context or {}).get("images", RELEASE)
        return self

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
        return self.proxy.image or self._images.proxy

    @property
    def writer_image(self) -> str:
        return self.writer.image or self._images.writer

    @property
    def image_pull_policy(self) -> PullPolicy | None:
        return self.pod_template.image_pull_policy or self._images.pull_policy

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


def parse_spec(spec: dict[str, Any], images: ImageDefaults = RELEASE) -> StratumPoolSpec:
    """``images``: the operator's defaults for the images (and pull policy) a spec leaves
    unset; the operator's come from the chart (``ImageDefaults.from_env``)."""
    return StratumPoolSpec.model_validate(spec, context={"images": images})
