"""The operator shows a Job's last words and the pool's messages through the same
redaction as the writer: a copy of the writer's module (another image), pinned here."""

from __future__ import annotations

from pathlib import Path

from stratum_operator import job_status
from stratum_operator.plugin.gather import PoolStatus
from stratum_operator.plugin.render import render

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Qz7mark#Wx8mark"
URL = f"postgresql://stratum:{SECRET}@db.example:5432/shares"


def test_the_operators_redaction_is_the_writers_byte_for_byte() -> None:
    writer = ROOT / "images" / "writer" / "src" / "stratum_writer" / "redaction.py"
    operator = ROOT / "operator" / "src" / "stratum_operator" / "redaction.py"
    assert operator.read_bytes() == writer.read_bytes()


def failed_pod(message: str) -> dict[str, object]:
    terminated = {"exitCode": 2, "reason": "Error", "message": message}
    return {"metadata": {"creationTimestamp": "2026-11-26T23:00:00Z"},
            "status": {"phase": "Failed",
                       "containerStatuses": [{"name": "migrate",
                                              "state": {"terminated": terminated}}]}}  # fmt: skip


def test_a_jobs_last_words_never_carry_a_password() -> None:
    """What an older writer, or a driver's traceback, left in the log tail."""
    said = job_status.last_words([failed_pod(
        f"Traceback (most recent call last):\n  ...\nValueError: bad DSN {URL}\n"
        "asyncpg: host=db.example password='Qz7mark Wx8mark' sslmode=require"
    )])  # fmt: skip
    assert said is not None and "migrate exited 2" in said
    assert "Qz7mark" not in said and "Wx8mark" not in said, said
    assert "postgresql://db.example/shares" in said and "sslmode=require" in said, said


def test_kubectl_stratum_shows_no_password_in_conditions_or_warnings() -> None:
    found = PoolStatus(
        "main", "pools", "Degraded", "",
        conditions=[{"type": "Migrated", "status": "False", "reason": "MigrationFailed",
                     "message": f"migration Job failed: cannot connect to {URL}"}],
        miners_address="-",
        warnings=[{"reason": "RetentionFailed", "count": 1, "last": None,
                   "message": "retention run failed: password=Qz7mark;Wx8mark"}],
    )  # fmt: skip
    screen = render(found)
    assert "Qz7mark" not in screen and "Wx8mark" not in screen, screen
    assert "cannot connect to postgresql://db.example/shares" in screen, screen
