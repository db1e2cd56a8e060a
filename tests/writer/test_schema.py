"""The schema as the databases see it matches the one definition of the share event."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.databases import Database
from harness.writer import WriterProcess
from sharelog.event import FIELDS, TEXT_LIMITS
from stratum_writer.backends.base import latest_migration
from stratum_writer.schema_export import render

ROOT = Path(__file__).resolve().parents[2]


def dialect(db: Database) -> str:
    return "mysql" if db.kind in ("mariadb", "mysql") else db.kind


def _columns(db: Database) -> list[tuple[str, int | None]]:
    if db.kind == "sqlite":
        names = [r.split("\t")[1] for r in db.query("PRAGMA table_info(share_events)").splitlines()]
        return [(n, None) for n in names]
    schema = "current_schema()" if db.kind == "postgres" else "DATABASE()"
    out = db.query(
        "SELECT column_name, character_maximum_length FROM information_schema.columns "
        f"WHERE table_schema = {schema} AND table_name = 'share_events' ORDER BY ordinal_position"
    )
    cols = []
    for line in out.splitlines():
        name, _, width = line.partition("\t" if "\t" in line else "|")
        cols.append((name.lower(), int(width) if width.strip() not in ("", "NULL") else None))
    return cols


def test_migrated_columns_follow_the_share_event(database: Database, tmp_path: Path) -> None:
    writer = WriterProcess(tmp_path / "spool", database.url)
    out = writer.run_command("migrate")
    assert out.returncode == 0, out.stderr
    assert f"schema version {latest_migration(dialect(database))}" in out.stdout
    columns = _columns(database)
    assert [name for name, _ in columns] == list(FIELDS)
    if database.kind != "sqlite":
        widths = {name: width for name, width in columns if name in TEXT_LIMITS}
        assert widths == TEXT_LIMITS
    again = writer.run_command("migrate")
    assert again.returncode == 0 and "applied: none" in again.stdout


def test_two_migration_jobs_at_once_apply_each_version_once(
    server_database: Database, tmp_path: Path
) -> None:
    writer = WriterProcess(tmp_path / "spool", server_database.url)
    procs = [
        subprocess.Popen(writer.command("migrate"), env=writer.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    versions = server_database.scalar("SELECT count(*) FROM schema_migrations")
    assert versions == latest_migration(dialect(server_database))


def test_vitess_files_are_the_writer_packages_own(tmp_path: Path) -> None:
    """vitess/ holds what the keyspace Job applies; 'make vitess-schema' regenerates it."""
    out = subprocess.run([sys.executable, "-m", "stratum_writer.cli", "export-vitess",
                          str(tmp_path)], capture_output=True, text=True, check=True)  # fmt: skip
    assert "schema.sql" in out.stdout and "vschema.json" in out.stdout
    for name in ("schema.sql", "vschema.json"):
        on_disk = (ROOT / "vitess" / name).read_text()
        assert on_disk == (tmp_path / name).read_text(), f"run 'make vitess-schema': {name}"
    assert (tmp_path / "schema.sql").read_text() == render("mysql")
    assert "CREATE TABLE IF NOT EXISTS share_events" in render("mysql")


def test_a_migration_history_from_before_its_shard_key_is_given_one(
    mysql_family_database: Database, tmp_path: Path
) -> None:
    """Earlier writers kept the MySQL history without ``shard_key`` (the column that lets
    vtgate route it): migrate adds it once, keeps every version, and the writer runs."""
    database = mysql_family_database
    writer = WriterProcess(tmp_path / "spool", database.url)
    assert writer.run_command("migrate").returncode == 0
    database.query("ALTER TABLE schema_migrations DROP COLUMN shard_key")  # as they left it
    again = writer.run_command("migrate")
    latest = latest_migration("mysql")
    assert again.returncode == 0 and f"schema version {latest}" in again.stdout, again.stderr
    assert database.scalar("SELECT count(*) FROM schema_migrations WHERE shard_key = 0") == latest
