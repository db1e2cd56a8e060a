"""Retention as a pool operator meets it, on the real control plane: the CronJob, a run
of its very command line on a real PostgreSQL, the run's report in the pool's status,
a failed run told as a Warning, and turning retention off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from harness.databases import Database
from harness.kubernetes import ControlPlane
from harness.stratum_pools import events, finish_job_pod, jobs, pool, ready_pool, status
from harness.writer import QUEUE, WriterProcess, migrate
from sharelog.spool import SpoolProducer
from sharelog.synthetic import synthetic_events

RETENTION = {"shareDays": 7, "rollupDays": 30}


def run_now(cp: ControlPlane, ns: str, name: str) -> str:
    """What a person does for a run outside the schedule."""
    cp.kubectl("create", "job", name, "--from=cronjob/kept-retention", "-n", ns)
    return name


def test_retention_runs_its_command_and_reports_in_status(
    installed_chart: ControlPlane, ns: str, postgres_db: Database, tmp_path: Path
) -> None:
    cp = installed_chart
    ready_pool(cp, "kept", ns, retention=RETENTION)
    cron = cp.wait("the retention CronJob", lambda: cp.get("cronjob", "kept-retention", ns), 30)
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[2] == "retain"
    # the run's own command line on a real database holding shares old and new
    now = datetime.now(UTC)
    spool = tmp_path / "spool"
    producer = SpoolProducer(spool)
    for start in (now - timedelta(days=20), now - timedelta(hours=1)):
        for e in synthetic_events(2000, seed=start.day, start_us=int(start.timestamp()) * 10**6):
            producer.append(e)
    producer.close_sync()
    writer = WriterProcess(spool, postgres_db.url)
    migrate(writer)
    writer.start().wait_for(QUEUE, lambda v: v == 0, 60)
    assert writer.terminate() == 0
    report_file = tmp_path / "report.json"
    ran = writer.run_command(*args[2:-1], str(report_file))  # --summary-file: ours, here
    assert ran.returncode == 0, ran.stderr
    assert postgres_db.scalar("SELECT count(*) FROM share_events") == 2000  # the old day gone
    job = run_now(cp, ns, "kept-retention-now")
    finish_job_pod(cp, ns, job, 0, report_file.read_text())
    kept_from = (now - timedelta(days=7)).date().isoformat()
    retained = cp.wait("status.retention", lambda: status(cp, "kept", ns).get("retention", {})
                       .get("oldestRetainedDay") == kept_from and status(cp, "kept", ns)["retention"], 40)  # fmt: skip
    assert retained["removed"]["share_events"] >= 0 and retained["lastRun"], retained
    # a run that fails is told once, with its last words, and kept as evidence
    failed = run_now(cp, ns, "kept-retention-again")
    finish_job_pod(cp, ns, failed, 2, "stratum-writer: cannot connect to postgresql://u:***@db:5432/shares: timeout")  # fmt: skip
    said = cp.wait("RetentionFailed", lambda: [e for e in events(cp, ns)
                                               if e["reason"] == "RetentionFailed"], 40)  # fmt: skip
    assert said[0]["type"] == "Warning" and "cannot connect" in said[0]["message"], said
    assert {j["metadata"]["name"] for j in jobs(cp, ns, "retention")} >= {job, failed}
    # turned off: the CronJob goes, what it reported stays
    cp.apply(pool("kept", ns, retention={**RETENTION, "enabled": False}))
    cp.wait("the CronJob gone", lambda: cp.get("cronjob", "kept-retention", ns) is None, 40)
