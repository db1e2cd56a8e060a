"""``make demo``: the whole share path on one machine, on embedded defaults.

A reference pool (real jobs, real SHA256d validation), a few hundred simulated miners
that really mine at a tiny difficulty (a few of them misbehaving as real firmware does),
the real ``stratum-proxy`` between them, and the real ``stratum-writer`` draining the
proxy's spool into SQLite. A live line shows miners, shares/s accepted and rejected, and
the writer's queue; at the end three ledgers are reconciled share for share: what the
pool judged, what the miners heard, and what the database holds (``ledgers.py``).

The run ends by writing ``demo-data/report.html`` (``report.py``), a picture of it to
open in a browser; the database is left in ``demo-data/shares.db`` for ``sqlite3``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from demo import report
from demo.ledgers import read_ledgers, summary
from sharelog.event_loop import prefer_uvloop
from stratum_sim.miners import Behaviour, run_fleet
from stratum_sim.pool import ReferencePool

MINERS = int(os.environ.get("DEMO_MINERS", "300"))
RATE = float(os.environ.get("DEMO_RATE", "3000"))  # shares per second, all miners together
SECONDS = float(os.environ.get("DEMO_SECONDS", "20"))
DATA = Path(os.environ.get("DEMO_DATA", "demo-data")).resolve()
MISBEHAVING = Behaviour(duplicate_rate=0.01, low_difficulty_rate=0.01, stale_rate=0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        text = r.read().decode()
    found = re.findall(r"^(stratum_\w+(?:\{[^}]*\})?) (\S+)$", text, re.MULTILINE)
    return {name: float(value) for name, value in found}


def spawn(
    argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    for _ in range(200):
        try:
            scrape(port)
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit(f"demo: {argv[2]} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
    sys.exit(f"demo: {argv[2]} did not serve metrics")


def shares_by_verdict(metrics: dict[str, float]) -> tuple[float, float]:
    accepted = metrics.get('stratum_proxy_shares_total{code="",verdict="accepted"}', 0.0)
    total = sum(v for k, v in metrics.items() if k.startswith("stratum_proxy_shares_total{"))
    return accepted, total - accepted


async def live_line(
    proxy_port: int, writer_port: int, stop: asyncio.Event, samples: list[report.Sample]
) -> None:
    """Once a second: a line for the person watching, a sample for the report."""
    started = last_t = time.monotonic()
    last = (0.0, 0.0)
    p: dict[str, float] = {}
    while not stop.is_set():
        await asyncio.sleep(1)
        try:
            p = await asyncio.to_thread(scrape, proxy_port)
        except OSError:  # the proxy has stopped; the writer still drains
            p = {**p, "stratum_proxy_miners": 0.0}
        w = await asyncio.to_thread(scrape, writer_port)
        now = time.monotonic()
        acc, rej = shares_by_verdict(p)
        dt = now - last_t
        miners = p.get("stratum_proxy_miners", 0)
        stored = w.get("stratum_writer_inserted_total", 0)
        queue = w.get("stratum_writer_queue_events", 0)
        samples.append(report.Sample(now - started, queue, stored))
        print(
            ("\r" if sys.stdout.isatty() else "")
            + f"  miners {miners:>4.0f}  accepted {(acc - last[0]) / dt:>6,.0f}/s  rejected "
            f"{(rej - last[1]) / dt:>5,.0f}/s  stored {stored:>8,.0f}  queue {queue:>6,.0f}",
            end="" if sys.stdout.isatty() else "\n",
            flush=True,
        )
        last, last_t = (acc, rej), now
    if sys.stdout.isatty():
        print()


async def run() -> int:
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir(parents=True)
    database = DATA / "shares.db"
    pool = ReferencePool(2**-28)
    pool_port = await pool.start()
    proxy_port, proxy_metrics, writer_metrics = free_port(), free_port(), free_port()
    config = DATA / "proxy.json"
    config.write_text(json.dumps({
        "pool": "demo", "listen": f"127.0.0.1:{proxy_port}",
        "metrics_listen": f"127.0.0.1:{proxy_metrics}",
        "upstreams": [f"stratum+tcp://127.0.0.1:{pool_port}"],
        "spool_dir": str(DATA / "spool"), "proxy_instance": "demo-proxy-0", "log_level": "WARNING",
        # the whole fleet dials from 127.0.0.1 at once: far past one address's 20 a second
        "max_new_connections_per_ip_per_s": 100_000,
    }))  # fmt: skip
    py = sys.executable
    writer = spawn(
        [py, "-m", "stratum_writer.cli", "--spool", str(DATA / "spool"), "run", "--listen",
         f"127.0.0.1:{writer_metrics}", "--batch-timeout-ms", "100", "--migrate"],
        writer_metrics, DATA / "writer.log", {**os.environ, "STRATUM_DATABASE_URL": f"sqlite:///{database}"},
    )  # fmt: skip
    proxy = spawn([py, "-m", "stratum_proxy.cli", "--config", str(config)], proxy_metrics,
                  DATA / "proxy.log")  # fmt: skip
    print(f"demo: {MINERS} miners at {RATE:,.0f} shares/s for {SECONDS:.0f}s -> stratum-proxy "
          f"-> reference pool; spool -> stratum-writer -> {database}")  # fmt: skip
    stop = asyncio.Event()
    samples: list[report.Sample] = []
    line = asyncio.create_task(live_line(proxy_metrics, writer_metrics, stop, samples))
    jobs = asyncio.create_task(new_jobs(pool))
    stats = await run_fleet("127.0.0.1", proxy_port, MINERS, RATE, SECONDS, MISBEHAVING)
    jobs.cancel()
    proxy.send_signal(signal.SIGTERM)
    proxy_code = await asyncio.to_thread(proxy.wait, 60)
    await asyncio.to_thread(wait_drained, writer_metrics)
    stop.set()
    await line
    writer.send_signal(signal.SIGTERM)
    writer_code = await asyncio.to_thread(writer.wait, 60)
    await pool.close()
    ledgers = read_ledgers(database, pool, stats, (proxy_code, writer_code), SECONDS)
    print("\n".join(summary(ledgers)))
    run = report.Run(MINERS, RATE, SECONDS, database)
    path = report.write(report.gather(run, ledgers, samples), DATA / "report.html")
    print(f"demo: a picture of this run: {path} (open it in a browser)")
    return 0 if ledgers.agree else 1


def wait_drained(writer_port: int) -> None:
    while scrape(writer_port).get("stratum_writer_queue_events", 1) > 0:
        time.sleep(0.2)


async def new_jobs(pool: ReferencePool) -> None:
    while True:  # a new block template every few seconds, as pools send
        await asyncio.sleep(5)
        pool.new_job(clean=False)


def main() -> int:
    prefer_uvloop()
    return asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
