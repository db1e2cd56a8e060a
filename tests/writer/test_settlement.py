"""``stratum-writer settle`` and ``export-shares`` on the real servers (PostgreSQL,
MariaDB, MySQL 9.7, SQLite): shares stored by the real writer, days settled by the
real command, rows read back with each database's own client."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from harness.databases import Database
from harness.writer import QUEUE, WriterProcess, migrate
from sharelog.event import ShareEvent, make_shard_key, make_share_id
from sharelog.spool import SpoolProducer
from stratum_writer.backends import open_backend
from stratum_writer.exits import ExitCode
from stratum_writer.settlement import store_for
from stratum_writer.settlement.core import AcceptedShare, PoolDay, Terms, settle

DAY = date(2026, 12, 1)
REASON = "test: no spool marks yet"


def share(pool: str, user: str, worker: str, at: int, difficulty: float = 1024.0,
          accepted: bool = True, n: int = 0) -> ShareEvent:  # fmt: skip
    nonce = f"{n:08x}"
    return ShareEvent(
        share_id=make_share_id(at, "up", "j1", "e1", f"{n:08x}", "6744e5a0", nonce, None),
        pool=pool, upstream="up", user_identity=user, worker=worker,
        shard_key=make_shard_key(user), job_id="j1", extranonce1="e1", extranonce2=f"{n:08x}",
        ntime="6744e5a0", nonce=nonce, version_bits=None, difficulty=difficulty,
        share_difficulty=difficulty * 2, accepted=accepted,
        error_code=None if accepted else 23, error_message=None if accepted else "low",
        block_candidate=False, submitted_at=at, responded_at=at + 900, proxy_instance="proxy-0",
    )  # fmt: skip


def store(database: Database, tmp_path: Path, events: list[ShareEvent]) -> WriterProcess:
    """The events stored by the real writer; the writer (stopped) to run commands with."""
    spool = tmp_path / "spool"
    writer = WriterProcess(spool, database.url)
    migrate(writer)
    producer = SpoolProducer(spool)
    for event in events:
        producer.append(event)
    producer.close_sync()
    writer.start().wait_for(QUEUE, lambda v: v == 0, 60)
    assert writer.terminate() == 0
    return writer


def settle_args(pool: str, reward: int, offset: int = 0, fee: int = 0) -> list[str]:
    return ["settle", "--pool", pool, "--day", DAY.isoformat(), "--reward", str(reward),
            "--external-hashrate", "1000000000000000", "--day-offset-minutes", str(offset),
            "--fee-basis-points", str(fee), "--close-anyway", DAY.isoformat(),
            "--reason", REASON]  # fmt: skip


def run_settle(writer: WriterProcess, *args: str) -> dict[str, Any]:
    out = writer.run_command(*args)
    assert out.returncode == 0, out.stderr
    report: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return report


def hex_of(db: Database, column: str) -> str:
    return f"encode({column}, 'hex')" if db.kind == "postgres" else f"lower(hex({column}))"


def current_parts(db: Database, pool: str) -> list[tuple[str, ...]]:
    """The day's current generation as the database's own client prints it."""
    out = db.query(
        f"SELECT s.user_identity, s.worker, s.accepted_shares, s.accepted_work, s.reward_part,"
        f" {hex_of(db, 's.digest')}, s.generation FROM settlements s JOIN settlement_days d"
        " ON d.pool = s.pool AND d.day = s.day AND d.current_generation = s.generation"
        f" WHERE d.pool = '{pool}' ORDER BY s.user_identity, s.worker"
    )
    return [tuple(line.replace("|", "\t").split("\t")) for line in out.splitlines() if line]


def expected_parts(events: list[ShareEvent], terms: Terms, pool_day: PoolDay
                   ) -> list[tuple[str, ...]]:  # fmt: skip
    """What the core computes from the events themselves, as the clients print it."""
    accepted = [AcceptedShare(e.user_identity, e.worker, e.shard_key, e.share_id, e.difficulty)
                for e in events if e.accepted and e.pool == pool_day.pool
                and pool_day.holds(e.submitted_at)]  # fmt: skip
    rows = settle(accepted, terms).workers
    return [(p.user_identity, str(p.worker), str(p.accepted_shares), str(p.accepted_work),
             str(p.reward_part), p.digest.hex()) for p in rows]  # fmt: skip


@pytest.mark.parametrize("offset", [480, -300, 345, 0])
def test_a_share_at_the_last_microsecond_of_a_day_and_one_at_the_first_of_the_next(
    database: Database, tmp_path: Path, offset: int
) -> None:
    day = PoolDay("edge", DAY, offset)
    events = [share("edge", "u", worker, at, n=n) for n, (worker, at) in enumerate([
        ("before", day.start_us - 1), ("first", day.start_us),
        ("last", day.end_us - 1), ("after", day.end_us)])]  # fmt: skip
    writer = store(database, tmp_path, events)
    report = run_settle(writer, *settle_args("edge", 1001, offset))
    assert (report["outcome"], report["accepted_shares"]) == ("settled", 2), report
    parts = current_parts(database, "edge")
    assert [p[1] for p in parts] == ["first", "last"]
    assert sorted(int(p[4]) for p in parts) == [500, 501]  # the odd unit to one of them
    assert [p[:6] for p in parts] == expected_parts(events, Terms(1001, 10**15), day)


def day_of_shares() -> list[ShareEvent]:
    """A day of awkward work: fractional difficulties, rejects, users with several
    workers, and shares of the days either side."""
    day = PoolDay("main", DAY, 0)
    difficulties = [1024.0, 1 / 3, 65536.123456789, 0.001, 2.0**40 + 0.5, 7.0]
    events = []
    for n in range(240):
        user = f"acct{n % 7}"
        at = day.start_us + n * 359_000_000 - 3_600_000_000  # from the day before on
        events.append(share("main", user, f"{user}.rig{n % 3}", at, difficulties[n % 6],
                            accepted=n % 11 != 0, n=n))  # fmt: skip
    return events


def test_settle_is_exact_idempotent_and_a_correction_is_a_new_generation_at_once(
    database: Database, tmp_path: Path
) -> None:
    events = day_of_shares()
    writer = store(database, tmp_path, events)
    day = PoolDay("main", DAY, 0)
    first = run_settle(writer, *settle_args("main", 312_500_000, fee=250))
    assert (first["outcome"], first["generation"]) == ("settled", 1), first
    parts = current_parts(database, "main")
    assert [p[:6] for p in parts] == expected_parts(events, Terms(312_500_000, 10**15, 250), day)
    assert sum(int(p[4]) for p in parts) == 312_500_000 - 312_500_000 * 250 // 10_000
    again = run_settle(writer, *settle_args("main", 312_500_000, fee=250))
    assert (again["outcome"], again["generation"]) == ("unchanged", 1), again
    corrected = run_settle(writer, *settle_args("main", 300_000_001, fee=250))
    assert (corrected["outcome"], corrected["generation"]) == ("corrected", 2), corrected
    now = current_parts(database, "main")
    assert {p[6] for p in now} == {"2"}
    assert [p[:6] for p in now] == expected_parts(events, Terms(300_000_001, 10**15, 250), day)
    assert database.scalar("SELECT count(*) FROM settlements WHERE generation = 1") == len(parts)
    assert database.scalar(
        "SELECT count(*) FROM settlement_accounts WHERE generation = 2") == 7  # fmt: skip
    wrong = writer.run_command(*settle_args("main", 1, offset=60))
    assert wrong.returncode == ExitCode.SETTLEMENT_REFUSED and "offset" in wrong.stderr


def test_an_export_adds_up_to_its_settlement_row(database: Database, tmp_path: Path) -> None:
    events = day_of_shares()
    writer = store(database, tmp_path, events)
    run_settle(writer, *settle_args("main", 312_500_000))
    user, worker, shares, work, _, digest, _ = current_parts(database, "main")[4]
    for form in ("csv", "jsonl"):
        out = writer.run_command("export-shares", "--pool", "main", "--day", DAY.isoformat(),
                                 "--user", user, "--worker", worker, "--format", form)  # fmt: skip
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stderr.strip().splitlines()[-1])
        assert summary == {"accepted_shares": int(shares), "accepted_work": work,
                           "digest": digest}  # fmt: skip
        if form == "csv":
            rows = list(csv.DictReader(io.StringIO(out.stdout)))
        else:
            rows = [json.loads(line) for line in out.stdout.splitlines()]
        accepted = [r for r in rows if r["accepted"] in (True, "True")]
        assert str(sum(int(r["work"]) for r in accepted)) == work
        assert len(rows) > len(accepted)  # its rejected shares too, with their verdicts
    unsettled = writer.run_command("export-shares", "--pool", "main", "--day", "2026-12-02")
    assert unsettled.returncode == ExitCode.SETTLEMENT_REFUSED, unsettled.stderr
    assert "not settled" in unsettled.stderr


def test_a_day_is_never_settled_without_saying_it_is_closed_anyway(
    database: Database, tmp_path: Path
) -> None:
    writer = store(database, tmp_path, day_of_shares())
    args = settle_args("main", 100)
    out = writer.run_command(*args[: args.index("--close-anyway")])
    assert out.returncode == ExitCode.SETTLEMENT_REFUSED
    (line,) = out.stderr.strip().splitlines()
    assert f"--close-anyway {DAY}" in line and "--reason" in line, line
    assert database.scalar("SELECT count(*) FROM settlement_days") == 0
    run_settle(writer, *args)
    how = database.query("SELECT closed_how, close_reason FROM settlement_days")
    assert how.replace("|", "\t") == f"closed_anyway\t{REASON}"


async def _leave_a_dead_runs_rows(url: str, events: list[ShareEvent]) -> None:
    """What a run SIGKILLed between writing its generation and switching to it leaves:
    the next generation's rows (here of other terms and fewer shares), never current."""
    backend = open_backend(url)
    await backend.connect(1)
    try:
        async with store_for(backend) as settlement:
            day = PoolDay("main", DAY, 0)
            current = await settlement.day("main", DAY)
            assert current is not None
            partial = [AcceptedShare(e.user_identity, e.worker, e.shard_key, e.share_id,
                                     e.difficulty) for e in events[:50] if e.accepted]  # fmt: skip
            await settlement.write_generation(day, current.generation + 1,
                                              settle(partial, Terms(5, 0)))  # fmt: skip
    finally:
        await backend.close()


def test_a_settle_killed_mid_way_and_run_again_gives_the_same_rows(
    database: Database, tmp_path: Path
) -> None:
    events = day_of_shares()
    writer = store(database, tmp_path, events)
    run_settle(writer, *settle_args("main", 1000))
    before = [p[:6] for p in current_parts(database, "main")]
    after = expected_parts(events, Terms(2000, 10**15), PoolDay("main", DAY, 0))
    for delay in (0.05, 0.3, 0.6, 1.0):  # SIGKILLed wherever it is by then
        proc = subprocess.Popen(writer.command(*settle_args("main", 2000)), env=writer.env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the day is the old generation whole, or the new one whole; never a mixture
        assert [p[:6] for p in current_parts(database, "main")] in (before, after)
    asyncio.run(_leave_a_dead_runs_rows(database.url, events))
    assert [p[:6] for p in current_parts(database, "main")] in (before, after)
    report = run_settle(writer, *settle_args("main", 2000))
    assert report["outcome"] in ("corrected", "unchanged"), report
    assert [p[:6] for p in current_parts(database, "main")] == after
    assert database.scalar("SELECT current_generation FROM settlement_days") == report["generation"]
    again = run_settle(writer, *settle_args("main", 2000))
    assert (again["outcome"], again["generation"]) == ("unchanged", report["generation"])
