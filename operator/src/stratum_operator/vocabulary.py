"""The status vocabulary: every word the operator writes where a person reads it.

``kubectl get sp`` shows a ``Phase``; ``kubectl describe`` shows conditions (a
``ConditionType`` with a ``Reason``) and Events (a ``Reason`` too). Each is a string
enum, defined here once: a typo is a NameError, not a silently different word on a
screen. ``docs/operator.md`` lists them; a test pins the list to these enums.
"""

from __future__ import annotations

import enum


class ConditionType(enum.StrEnum):
    READY = "Ready"
    KEYSPACE_READY = "KeyspaceReady"
    SCHEMA_READY = "SchemaReady"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SCALING_ACTIVE = "ScalingActive"
    DEAD_LETTERS_FULL = "DeadLettersFull"
    SPOOL_EPHEMERAL = "SpoolEphemeral"
    RECONCILIATION_PAUSED = "ReconciliationPaused"


class Phase(enum.StrEnum):
    """One word for ``kubectl get sp``; ``phase()`` in ``conditions.py`` picks it."""

    PAUSED = "Paused"  # the pause-reconciliation annotation is set: nothing is changed
    BLOCKED = "Blocked"  # a mistake the operator can't fix: the spec, a Secret, Vitess
    DEGRADED = "Degraded"  # was Ready, now serves with fewer pods, or a rollout is stuck
    KEYSPACE = "Keyspace"  # the Vitess keyspace is being placed or applied
    KEYSPACE_FAILED = "KeyspaceFailed"
    MIGRATING = "Migrating"
    SCHEMA_FAILED = "SchemaFailed"
    PROGRESSING = "Progressing"  # rolling out, or pods not ready yet
    READY = "Ready"


class Reason(enum.StrEnum):
    """Why a condition is what it is, and what an Event reports."""

    # Degraded=False
    AS_EXPECTED = "AsExpected"
    # Degraded=True: blocked until a person acts (phase Blocked)
    INVALID_SPEC = "InvalidSpec"
    SECRET_MISSING = "SecretMissing"  # noqa: S105 - a reason, not a secret
    SECRET_KEY_MISSING = "SecretKeyMissing"  # noqa: S105
    VITESS_CLUSTER_MISSING = "VitessClusterMissing"
    KEYSPACE_NOT_DECLARED = "KeyspaceNotDeclared"
    # Degraded=True: serving, but not as wanted (phase Degraded)
    REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
    ROLLOUT_STUCK = "RolloutStuck"
    # KeyspaceReady
    WAITING_FOR_VITESS_CLUSTER = "WaitingForVitessCluster"
    KEYSPACE_APPLYING = "KeyspaceApplying"
    KEYSPACE_APPLIED = "KeyspaceApplied"
    KEYSPACE_FAILED = "KeyspaceFailed"
    # SchemaReady
    MIGRATING = "Migrating"
    MIGRATED = "Migrated"
    MIGRATED_BY_WRITER = "MigratedByWriter"
    MIGRATION_FAILED = "MigrationFailed"
    # Progressing
    ROLLING_OUT = "RollingOut"
    RETIRING_DEPLOYMENT = "RetiringDeployment"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    COMPLETE = "Complete"
    # Ready
    ALL_REPLICAS_READY = "AllReplicasReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    KEYSPACE_NOT_READY = "KeyspaceNotReady"
    SCHEMA_NOT_READY = "SchemaNotReady"
    # ScalingActive
    READING_QUEUES = "ReadingQueues"
    METRICS_UNAVAILABLE = "MetricsUnavailable"
    SCALING_PAUSED = "ScalingPaused"
    # DeadLettersFull
    DEAD_LETTER_CAP_REACHED = "DeadLetterCapReached"
    BELOW_DEAD_LETTER_CAP = "BelowDeadLetterCap"
    # SpoolEphemeral
    EMPTY_DIR = "EmptyDir"
    # ReconciliationPaused
    PAUSED_BY_ANNOTATION = "PausedByAnnotation"
    RECONCILING = "Reconciling"
    # Events only
    RECOVERED = "Recovered"
    MIGRATION_STARTED = "MigrationStarted"
    MIGRATION_SUCCEEDED = "MigrationSucceeded"
    KEYSPACE_STARTED = "KeyspaceStarted"
    KEYSPACE_SUCCEEDED = "KeyspaceSucceeded"
    VITESS_CLUSTER_PATCHED = "VitessClusterPatched"
    RESTORED = "Restored"
    SCALED = "Scaled"
    DEPLOYMENT_RETIRED = "DeploymentRetired"
    SCALED_WRITERS = "ScaledWriters"
    DRAIN_STARTED = "DrainStarted"
    DRAIN_SUCCEEDED = "DrainSucceeded"
    DRAIN_FAILED = "DrainFailed"
    SPOOL_DAMAGED = "SpoolDamaged"  # a drain quarantined damaged spool bytes: claim kept
    DRAIN_STOPPED = "DrainStopped"
    DRAINING = "Draining"
    SPOOLS_ABANDONED = "SpoolsAbandoned"
    RECONCILE_ERROR = "ReconcileError"
    RETENTION_FAILED = "RetentionFailed"


# Degraded reasons that mean "a person must act": the phase says Blocked
BLOCKING = frozenset({Reason.INVALID_SPEC, Reason.SECRET_MISSING, Reason.SECRET_KEY_MISSING,
                      Reason.VITESS_CLUSTER_MISSING, Reason.KEYSPACE_NOT_DECLARED})  # fmt: skip
