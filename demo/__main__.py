"""``make demo``: the share pipeline on one machine, on embedded defaults.

A producer appends shares to a spool at a steady rate, as the proxy does; the real
``stratum-writer`` process drains it into SQLite; a live line shows throughput and queue
depth; at the end every share produced is counted in the database, once. The database
is left in ``demo-data/shares.db`` for a look with ``sqlite3``.

The proxy, reference pool and load generator (issue "Stratum V1 proxy") will replace the
synthetic producer here with real miners.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from sharelog.spool import SpoolProducer
from sharelog.synthetic import synthetic_events

SHARES = int(os.environ.get("DEMO_SHARES", "300000"))
RATE = float(os.environ.get("DEMO_RATE", "40000"))  # shares per second from the "proxy"
PORT = int(os.environ.get("DEMO_METRICS_PORT", "19100"))
DATA = Path(os.environ.get("DEMO_DATA", "demo-data")).resolve()


def produce(spool: Path, done: threading.Event, stats: dict[str, int]) -> None:
    """Append shares at RATE per second, flushing every 5 ms, as the proxy's spool does."""
    producer = SpoolProducer(spool)
    started = time.monotonic()
    now_us = int(time.time() * 1e6)
    for i, event in enumerate(synthetic_events(SHARES, rate_per_s=RATE, seed=7, start_us=now_us)):
        producer.append(event)
        if i % 200 == 199:
            producer.flush_sync()
            ahead = (i + 1) / RATE - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    producer.close_sync()
    stats["produced"] = producer.appended
    stats["dropped"] = producer.dropped
    done.set()


def metrics() -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=2) as r:
        text = r.read().decode()
    found = re.findall(r"^(stratum_writer_\w+) (\S+)$", text, re.MULTILINE)
    return {name: float(value) for name, value in found}


def main() -> int:
    shutil.rmtree(DATA, ignore_errors=True)
    spool = DATA / "spool"
    database = DATA / "shares.db"
    env = {**os.environ, "STRATUM_DATABASE_URL": f"sqlite:///{database}"}
    writer = subprocess.Popen(
        [sys.executable, "-m", "stratum_writer.cli", "--spool", str(spool), "--log-level",
         "WARNING", "run", "--listen", f"127.0.0.1:{PORT}", "--batch-timeout-ms", "100"],
        env=env,
    )  # fmt: skip
    for _ in range(100):
        try:
            metrics()
            break
        except OSError:
            if writer.poll() is not None:
                print("demo: the writer did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
    print(f"demo: {SHARES:,} shares at {RATE:,.0f}/s -> spool -> stratum-writer -> {database}")
    done = threading.Event()
    stats: dict[str, int] = {}
    threading.Thread(target=produce, args=(spool, done, stats), daemon=True).start()
    last_count, last_time = 0.0, time.monotonic()
    while True:
        time.sleep(0.5)
        m = metrics()
        count = m.get("stratum_writer_inserted_total", 0.0)
        now = time.monotonic()
        rate = (count - last_count) / (now - last_time)
        last_count, last_time = count, now
        print(
            ("\r" if sys.stdout.isatty() else "")
            + f"  stored {count:>9,.0f}  {rate:>8,.0f} shares/s  "
            f"queue {m.get('stratum_writer_queue_events', 0):>7,.0f}  "
            f"oldest {m.get('stratum_writer_oldest_event_age_seconds', 0):5.2f}s",
            end="" if sys.stdout.isatty() else "\n",
            flush=True,
        )
        if done.is_set() and m.get("stratum_writer_queue_events", 1) == 0:
            break
    if sys.stdout.isatty():
        print()
    writer.send_signal(signal.SIGTERM)
    code = writer.wait(60)
    with sqlite3.connect(database) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT share_id) FROM share_events"
        ).fetchone()
        (rolled,) = conn.execute(
            "SELECT sum(accepted + rejected + stale) FROM worker_stats_minute"
        ).fetchone()
        accepted, stale = conn.execute(
            "SELECT sum(accepted), sum(stale) FROM worker_stats_minute"
        ).fetchone()
    produced = stats["produced"]
    ok = code == 0 and rows == distinct == rolled == produced
    print(
        f"demo: produced {produced:,}, stored {rows:,} ({distinct:,} distinct), rolled up "
        f"{rolled:,} ({accepted:,} accepted, {stale:,} stale); writer exit {code}: "
        + ("every share stored exactly once" if ok else "MISMATCH")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
