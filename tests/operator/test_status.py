"""What a pool's status says, from the pure parts that decide it: the phase, which flips
are Events, the merge patch written, the health read off a StatefulSet, the shares/s
rate. No cluster: these are the rules; the e2e suite shows them on a real one."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from stratum_operator import writer_scaling
from stratum_operator.conditions import Condition, flip_event, phase
from stratum_operator.observe import PodReading
from stratum_operator.outcome import Outcome
from stratum_operator.pool_memory import PoolMemory
from stratum_operator.reporting import report
from stratum_operator.spec import parse_spec
from stratum_operator.vocabulary import ConditionType, Phase, Reason
from stratum_operator.workload import hand_scaled, report_rollout

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operator.md"
SPEC = parse_spec({"upstreams": ["stratum+tcp://p:1"],
                   "persistence": {"backend": "postgres", "databaseUrlSecret": {"name": "d"}},
                   "proxy": {"replicas": 2, "progressDeadlineSeconds": 60}})  # fmt: skip
T = ConditionType


def sts(generation: int, *, ready: int, updated: int, replicas: int = 2,
        revisions: tuple[str, str] = ("a", "a")) -> dict[str, Any]:  # fmt: skip
    return {"metadata": {"generation": generation, "labels": {"stratum.io/pool": "main"}},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": generation, "readyReplicas": ready,
                       "updatedReplicas": updated, "currentRevision": revisions[0],
                       "updateRevision": revisions[1]}}  # fmt: skip


def said(out: Outcome, type_: ConditionType) -> tuple[bool, Reason]:
    cond = out.said(type_)
    assert cond is not None
    return cond.status, cond.reason


def test_the_phase_is_the_first_word_that_applies() -> None:
    def c(t: ConditionType, s: bool, r: Reason) -> Condition:
        return Condition(t, s, r, "m")

    assert phase([c(T.RECONCILIATION_PAUSED, True, Reason.PAUSED_BY_ANNOTATION),
                  c(T.DEGRADED, True, Reason.SECRET_MISSING)]) is Phase.PAUSED  # fmt: skip
    assert phase([c(T.DEGRADED, True, Reason.SECRET_KEY_MISSING)]) is Phase.BLOCKED
    assert phase([c(T.DEGRADED, True, Reason.REPLICAS_UNAVAILABLE)]) is Phase.DEGRADED
    assert phase([c(T.SCHEMA_READY, False, Reason.MIGRATING)]) is Phase.MIGRATING
    assert phase([c(T.SCHEMA_READY, False, Reason.MIGRATION_FAILED)]) is Phase.SCHEMA_FAILED
    assert phase([c(T.KEYSPACE_READY, False, Reason.KEYSPACE_FAILED)]) is Phase.KEYSPACE_FAILED
    assert phase([c(T.READY, True, Reason.ALL_REPLICAS_READY)]) is Phase.READY
    assert phase([c(T.READY, False, Reason.ROLLING_OUT)]) is Phase.PROGRESSING


def test_only_health_flips_are_events_and_warnings_only_for_what_went_wrong() -> None:
    ready = Condition(T.READY, True, Reason.ALL_REPLICAS_READY, "2/2 proxy pods ready")
    assert flip_event(ready, None) == (Reason.ALL_REPLICAS_READY, "2/2 proxy pods ready", False)
    waiting = Condition(T.READY, False, Reason.SCHEMA_NOT_READY, "waiting")
    assert flip_event(waiting, None) is None, "not ready yet on a new pool is not news"
    lost = Condition(T.READY, False, Reason.REPLICAS_NOT_READY, "1/2 proxy pods ready")
    assert flip_event(lost, {"status": "True"}) == (
        Reason.REPLICAS_NOT_READY, "no longer ready: 1/2 proxy pods ready", True)  # fmt: skip
    rolling = Condition(T.READY, False, Reason.ROLLING_OUT, "rolling out")
    assert flip_event(rolling, {"status": "True"})[2] is False  # type: ignore[index]
    healthy = Condition(T.DEGRADED, False, Reason.AS_EXPECTED, "no fault found")
    assert flip_event(healthy, None) is None, "a new pool being healthy is not news"
    news = flip_event(healthy, {"status": "True", "reason": "SecretMissing"})
    assert news is not None and news[0] is Reason.RECOVERED and "SecretMissing" in news[1]
    migrated = Condition(T.SCHEMA_READY, True, Reason.MIGRATED, "done")
    assert flip_event(migrated, None) is None, "the gate posts its own MigrationSucceeded"


def test_an_unchanged_status_is_not_written_and_dropped_keys_are_removed() -> None:
    out = Outcome()
    out.condition(T.READY, True, Reason.ALL_REPLICAS_READY, "2/2 proxy pods ready")
    out.status.update(ready="2/2", schema={"job": "j", "ready": True}, miners=None)
    first = report({"metadata": {"generation": 3}, "status": {}}, out, now="2026-01-01T00:00:00Z")
    assert first.status["phase"] == "Ready" and first.status["observedGeneration"] == 3
    assert "miners" not in first.status, "unknown, and not there: nothing to remove"
    pool = {"metadata": {"generation": 3}, "status": {**first.status,
            "schema": {"job": "j", "ready": True, "lastError": "x"}, "miners": 7}}  # fmt: skip
    again = report(pool, out, now="2026-01-01T00:00:10Z")
    assert again.status == {"schema": {"lastError": None}, "miners": None}
    assert again.events == [], "no flip, no Event"


def test_a_pod_lost_by_a_ready_pool_is_degraded_not_progress() -> None:
    memo = PoolMemory()
    out = Outcome()
    report_rollout(sts(4, ready=2, updated=2), SPEC, {}, memo, out, now=0)
    assert said(out, T.READY) == (True, Reason.ALL_REPLICAS_READY)
    done = out.status["rolledOutGeneration"]
    was = {"rolledOutGeneration": done, "conditions": [{"type": "Ready", "status": "True"}]}
    out = Outcome()
    report_rollout(sts(4, ready=1, updated=1), SPEC, was, memo, out, now=10)
    assert said(out, T.DEGRADED) == (True, Reason.REPLICAS_UNAVAILABLE)
    assert said(out, T.PROGRESSING) == (False, Reason.COMPLETE)
    assert said(out, T.READY) == (False, Reason.REPLICAS_NOT_READY)
    out = Outcome()
    report_rollout(sts(4, ready=1, updated=1), SPEC, {"rolledOutGeneration": done}, memo, out,
                   now=10)  # fmt: skip
    assert said(out, T.DEGRADED)[0] is False, "never Ready yet: not degraded, just not ready"


def test_a_rollout_without_progress_past_its_deadline_is_stuck() -> None:
    memo = PoolMemory()
    status = {"rolledOutGeneration": 4}
    rolling = sts(5, ready=1, updated=1, revisions=("a", "b"))
    out = Outcome()
    report_rollout(rolling, SPEC, status, memo, out, now=0)
    assert said(out, T.PROGRESSING) == (True, Reason.ROLLING_OUT)
    assert said(out, T.READY) == (False, Reason.ROLLING_OUT)
    out = Outcome()
    report_rollout(rolling, SPEC, status, memo, out, now=59)
    assert said(out, T.DEGRADED)[0] is False
    out = Outcome()
    report_rollout(rolling, SPEC, status, memo, out, now=61)
    assert said(out, T.PROGRESSING) == (False, Reason.PROGRESS_DEADLINE_EXCEEDED)
    assert said(out, T.DEGRADED) == (True, Reason.ROLLOUT_STUCK)
    out = Outcome()  # progress restarts the clock
    report_rollout(sts(5, ready=2, updated=1, revisions=("a", "b")), SPEC, status, memo, out,
                   now=62)  # fmt: skip
    assert said(out, T.PROGRESSING) == (True, Reason.ROLLING_OUT)


def reading(pod: str, total: float | None) -> PodReading:
    return PodReading(pod, None if total is None else 1, total, 0, 1, 1)


def test_a_replica_count_is_hand_set_when_someone_else_owns_the_field() -> None:
    def sts(manager: str, replicas: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"f:spec": {"f:replicas": {}}}
        return {"metadata": {"managedFields": [
            {"manager": "stratum-operator", "operation": "Apply", "fieldsV1": {"f:spec": {}}},
            {"manager": manager, "operation": "Update", "subresource": "scale",
             "fieldsV1": fields}]}, "spec": {"replicas": replicas}}  # fmt: skip

    assert hand_scaled(sts("kubectl", 5)) == (5, "kubectl")
    assert hand_scaled(sts("stratum-operator", 2)) is None  # our own apply
    assert hand_scaled({"metadata": {}, "spec": {"replicas": 2}}) is None


def test_shares_per_second_is_per_pod_across_resets_and_pods_coming_and_going() -> None:
    clock = iter([0.0, 10.0, 20.0, 30.0, 40.0])
    memo = PoolMemory()

    def tick(*readings: PodReading) -> Any:
        out = Outcome()
        writer_scaling.report_traffic(list(readings), memo, out, now=next(clock))
        return out.status["sharesPerSecond"]

    assert tick(reading("a", 0), reading("b", 0)) is None, "no window yet: unknown, not 0"
    assert tick(reading("a", 200), reading("b", 200)) == 40.0
    assert tick(reading("a", 400)) == 20.0, "b not read: a's rate, not 0 and not a drop"
    assert tick(reading("a", 100), reading("b", 600)) == 10.0, "a restarted; b has no window"
    assert tick(reading("a", 300), reading("b", 800)) == 40.0, "b back: no spike"


def test_a_writer_at_its_dead_letter_cap_sets_dead_letters_full_naming_the_pod() -> None:
    def full(*pods: PodReading) -> Outcome:
        out = Outcome()
        writer_scaling.report_dead_letters(list(pods), out)
        return out

    held = dataclasses.replace(reading("main-proxy-1", 10), dead_letters_full=True)
    out = full(reading("main-proxy-0", 10), held)
    assert said(out, T.DEAD_LETTERS_FULL) == (True, Reason.DEAD_LETTER_CAP_REACHED)
    condition = out.said(T.DEAD_LETTERS_FULL)
    assert condition is not None and "main-proxy-1" in condition.message
    assert "main-proxy-0" not in condition.message
    out = full(reading("main-proxy-0", 10), reading("main-proxy-1", 10))
    assert said(out, T.DEAD_LETTERS_FULL) == (False, Reason.BELOW_DEAD_LETTER_CAP)
    assert full().said(T.DEAD_LETTERS_FULL) is None, "no pod read: nothing said"


def test_the_docs_list_the_status_vocabulary() -> None:
    text = DOCS.read_text()
    listed = set(re.findall(r"`([A-Z][A-Za-z]+)`", text))
    for vocabulary in (ConditionType, Phase, Reason):
        missing = sorted(v.value for v in vocabulary if v.value not in listed)
        assert not missing, f"docs/operator.md doesn't name {vocabulary.__name__}: {missing}"


def test_a_retention_report_becomes_the_status_a_person_reads() -> None:
    from stratum_operator.retention_status import retention_status

    report = {"share_cutoff": "2026-08-28", "rollup_cutoff": "2025-10-22",
              "removed": {"share_events": 1200, "worker_stats_minute": 40, "workers": 0},
              "partitions_dropped": ["share_events_p20260826", "share_events_p20260827"],
              "partitions_created": [], "oldest_share": "2026-08-28T00:00:01Z", "skipped": ""}  # fmt: skip
    status = retention_status(report, "2026-11-26T17:17:05Z")
    assert status == {"oldestRetainedDay": "2026-08-28", "oldestRollupDay": "2025-10-22",
                      "oldestShare": "2026-08-28T00:00:01Z", "lastRun": "2026-11-26T17:17:05Z",
                      "removed": report["removed"], "partitionsDropped": 2}  # fmt: skip
