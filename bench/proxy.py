"""``make bench-proxy``: what the proxy costs a miner, side by side with direct and a peer.

In one run, on this machine, with the reference pool (its own process) and the load
generator (this process) beside the system under test:

- ``direct``: miners straight to the pool, the floor for latency;
- ``ours``: through ``stratum-proxy`` with full accounting (header rebuilt and hashed,
  verdict tracked, event spooled);
- ``aiostratum-proxy`` (PyPI 1.1): the peer, where it can be made to run.

Metrics: ``shares_per_s`` relayed (and ``shares_per_cpu_s``, the proxy's own CPU cost,
which the noisy shared cores don't distort), ``added_p50_ms``/``added_p99_ms`` (proxied
minus direct, submit to verdict) at 1,000 and 10,000 shares/s, ``rss_per_conn_kb`` for
10,000 idle miners (subscribed and authorized). Shares are mined for real, at
difficulty 2^-32 so the load generator is not the bottleneck.

Latency on two shared cores is noisy (one run's direct p99 can be ten times another's),
so the systems take turns over ``BENCH_PROXY_ROUNDS`` rounds and each latency line is
the median of the rounds, with their spread; ``runqueue_wait_ms_per_s`` says how long
the pool and the load generator waited for a CPU while each system ran, which is where
the tail at 10,000 shares/s comes from (docs/proxy.md).

``BENCH_PROXY_BEFORE=<a checkout>`` adds ``before``: the proxy of that checkout (an
earlier build), taking turns with ours in the latency and throughput runs.

Also ``hostile_rss_kb`` (``proxy_hostile``: memory per hostile connection, by kind) and
the cost of a scrape loop: added p99 at 1,000 shares/s with 10,000 workers' series to
export, with and without ``/metrics`` scraped ten times a second (``scrape_p99_increase``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from bench.peers import AiostratumProxy, PeerUnavailable
from bench.proxy_hostile import measure_hostile_rss
from bench.report import Reporter
from harness.procfs import cpu_seconds, rss_kb, runqueue_wait_seconds
from harness.proxy import ProxyProcess
from harness.workers import one_share_per_worker
from stratum_sim.miners import Behaviour, MinerStats, run_fleet

IDLE = int(os.environ.get("BENCH_IDLE_CONNECTIONS", "10000"))
SECONDS = float(os.environ.get("BENCH_PROXY_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_PROXY_ROUNDS", "3"))
BEFORE = os.environ.get("BENCH_PROXY_BEFORE")  # a checkout of the build to compare with
SCRAPE_WORKERS = 10_000
SCRAPES_PER_S = 10
# scrapes /metrics at a rate until killed, from a process of its own
SCRAPER = """
import sys, time, urllib.request
url, every = sys.argv[1], 1 / float(sys.argv[2])
while True:
    started = time.monotonic()
    urllib.request.urlopen(url, timeout=30).read()
    time.sleep(max(0.0, every - (time.monotonic() - started)))
"""
DIFFICULTY = 2**-32
NO_ROLLING = Behaviour(version_rolling=False)  # the peer has no mining.configure
# Throughput is measured closed-loop: each miner keeps at most 16 submits unanswered, so
# the rate is what the system sustains, not how much of an overload it refuses.
CLOSED_LOOP = Behaviour(version_rolling=False, max_in_flight=16)


class Pool(NamedTuple):
    port: int
    pid: int


@contextlib.contextmanager
def reference_pool() -> Iterator[Pool]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "stratum_sim.pool", "--port", "0", "--difficulty",
         str(DIFFICULTY), "--job-interval", "30"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        yield Pool(int(proc.stdout.readline().rsplit(":", 1)[1]), proc.pid)
    finally:
        proc.kill()
        proc.wait()


class Load(NamedTuple):
    rate: float  # shares the pool accepted, per second of the whole run (connects and the
    # wait for the last verdicts included, so it errs low); every share sent is valid, so
    # any other answer is a share the system under test failed to relay
    latencies: list[float]  # submit -> verdict, seconds
    submitted: int
    answered: int


def load(
    port: int, miners: int, rate: float, seconds: float, behaviour: Behaviour = NO_ROLLING
) -> Load:
    started = time.perf_counter()
    stats: list[MinerStats] = asyncio.run(
        run_fleet("127.0.0.1", port, miners, rate, seconds, behaviour)
    )
    elapsed = time.perf_counter() - started
    answered = sum(sum(s.answers.values()) for s in stats)
    accepted = sum(s.answers[None] for s in stats)
    latencies = [x for s in stats for x in s.latencies]
    return Load(accepted / elapsed, latencies, sum(s.submitted for s in stats), answered)


def percentile(values: list[float], q: float) -> float:
    if len(values) <= 10:
        return 0.0
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


async def _idle_miners(port: int, count: int, hold: asyncio.Event) -> int:
    """Open ``count`` subscribed, authorized miners that then say nothing."""
    opened: list[asyncio.StreamWriter] = []

    async def one(i: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"id":1,"method":"mining.subscribe","params":[]}\n'
                     b'{"id":2,"method":"mining.authorize","params":["idle.%d","x"]}\n' % i)  # fmt: skip
        await writer.drain()
        await asyncio.wait_for(reader.readline(), 60)
        opened.append(writer)

    for start in range(0, count, 500):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + 500))),
                             return_exceptions=True)  # fmt: skip
    await hold.wait()
    for w in opened:
        w.close()
    return len(opened)


def idle_rss(port: int, pid: int, count: int) -> tuple[float, int]:
    """RSS per idle miner in KB: the process's growth with ``count`` of them connected."""
    before = rss_kb(pid)

    async def measure() -> tuple[int, int]:
        hold = asyncio.Event()
        task = asyncio.create_task(_idle_miners(port, count, hold))
        last, stable = -1, 0
        while stable < 3 and not task.done():  # all in when RSS stops moving
            await asyncio.sleep(1)
            now = rss_kb(pid)
            stable = stable + 1 if now == last else 0
            last = now
        peak = rss_kb(pid)
        hold.set()
        return await task, peak

    opened, peak = asyncio.run(measure())
    return (peak - before) / max(opened, 1), opened


Systems = dict[str, tuple[int, int | None]]  # name -> (port miners dial, pid or None)


def measure_latency(report: Reporter, systems: Systems, pool_pid: int) -> None:
    """Submit -> verdict at two rates; added = proxied minus direct, systems taking turns."""
    for rate, miners in ((1000, 50), (10000, 200)):
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in systems}
        for turn in range(ROUNDS):
            for name, (port, _) in systems.items():
                waited = {"pool": pool_pid, "loadgen": os.getpid()}
                before = {k: runqueue_wait_seconds(pid) for k, pid in waited.items()}
                started = time.perf_counter()
                lat = load(port, miners, rate, SECONDS).latencies
                elapsed = time.perf_counter() - started
                if len(lat) <= 10:
                    continue  # the peer answered nothing at this rate
                result = {"p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99),
                          "samples": len(lat), "turn": turn}  # fmt: skip
                for k, pid in waited.items():
                    result[f"wait_{k}"] = (runqueue_wait_seconds(pid) - before[k]) / elapsed
                rounds[name].append(result)
        direct = {int(r["turn"]): r for r in rounds["direct"]}
        for name, results in rounds.items():
            if not results:
                report.emit(backend="proxy", system=name, metric="p99_ms", value=0.0,
                            unit="ms", rate=rate, samples=0)  # fmt: skip
                continue
            for label in ("p50", "p99"):
                values = [r[label] * 1e3 for r in results]
                report.emit(backend="proxy", system=name, metric=f"{label}_ms",
                            value=statistics.median(values), unit="ms", rate=rate,
                            rounds=[round(v, 3) for v in values],
                            samples=sum(int(r["samples"]) for r in results))  # fmt: skip
                if name != "direct":
                    added = [(r[label] - direct[int(r["turn"])][label]) * 1e3
                             for r in results if int(r["turn"]) in direct]  # fmt: skip
                    report.emit(backend="proxy", system=name, metric=f"added_{label}_ms",
                                value=statistics.median(added), unit="ms", rate=rate,
                                rounds=[round(v, 3) for v in added])  # fmt: skip
            for k in ("pool", "loadgen"):
                waits = [r[f"wait_{k}"] * 1e3 for r in results]
                report.emit(backend="proxy", system=name, metric="runqueue_wait_ms_per_s",
                            value=statistics.median(waits), unit="ms/s", rate=rate,
                            process=k)  # fmt: skip


def measure_throughput(report: Reporter, systems: Systems) -> None:
    """As many shares as 400 closed-loop miners get relayed; and each share's CPU cost.
    The systems take turns, ``ROUNDS`` times; each line is the median of the rounds."""
    rates: dict[str, list[float]] = {name: [] for name in systems}
    per_cpu: dict[str, list[float]] = {name: [] for name in systems}
    for _ in range(ROUNDS):
        for name, (port, pid) in systems.items():
            cpu0, wall0 = (cpu_seconds(pid) if pid else 0.0), time.perf_counter()
            run = load(port, 400, 1e6, SECONDS, CLOSED_LOOP)
            rates[name].append(run.rate)
            if pid:
                shares = run.rate * (time.perf_counter() - wall0)
                per_cpu[name].append(shares / max(cpu_seconds(pid) - cpu0, 1e-9))
    for name in systems:
        report.emit(backend="proxy", system=name, metric="shares_per_s",
                    value=statistics.median(rates[name]), unit="shares/s",
                    rounds=[round(v) for v in rates[name]])  # fmt: skip
        if per_cpu[name]:
            report.emit(backend="proxy", system=name, metric="shares_per_cpu_s",
                        value=statistics.median(per_cpu[name]), unit="shares/cpu-s",
                        rounds=[round(v) for v in per_cpu[name]])  # fmt: skip


def measure_idle(report: Reporter, systems: Systems) -> None:
    # A subscribed miner is two sockets in our proxy (miner side, pool side); the
    # machine's hard limit on open files decides how many fit in one process.
    idle = min(IDLE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 1000) // 2)
    for name, (port, pid) in systems.items():
        if pid is None or name == "before":
            continue
        per_conn, opened = idle_rss(port, pid, idle)
        report.emit(backend="proxy", system=name, metric="rss_per_conn_kb",
                    value=per_conn, unit="KB", connections=opened,
                    note=f"{IDLE} asked; open-file hard limit allows {idle}")  # fmt: skip


class BeforeProxy(ProxyProcess):
    """The proxy of another checkout (``BENCH_PROXY_BEFORE``), on this machine's Python."""

    def __init__(self, checkout: Path, workdir: Path, upstreams: list[str], **settings: Any):
        super().__init__(workdir, upstreams, **settings)
        self.checkout = checkout
        known = (checkout / "images/proxy/src/stratum_proxy/config.py").read_text()
        for key in list(self.config):
            if key not in known:  # a setting newer than that build: it would refuse it
                del self.config[key]

    def env(self) -> dict[str, str]:
        src = [self.checkout / p for p in ("packages/sharelog/src", "images/proxy/src")]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, src))}


def start_systems(
    workdir: Path, pool_port: int, report: Reporter | None
) -> tuple[Systems, list[Any]]:
    """Fresh processes of ours and the peer in front of the pool; (systems, to stop)."""
    upstream = f"stratum+tcp://127.0.0.1:{pool_port}"
    systems: Systems = {"direct": (pool_port, None)}
    ours = ProxyProcess(workdir / "ours", [upstream], max_connections_per_ip=IDLE + 1000,
                        log_level="WARNING").start()  # fmt: skip
    assert ours.proc is not None
    systems["ours"] = (ours.listen_port, ours.proc.pid)
    running: list[Any] = [ours]
    if BEFORE:
        before = BeforeProxy(Path(BEFORE), workdir / "before", [upstream],
                             max_connections_per_ip=IDLE + 1000, log_level="WARNING").start()  # fmt: skip
        assert before.proc is not None
        systems["before"] = (before.listen_port, before.proc.pid)
        running.append(before)
    try:
        peer = AiostratumProxy(workdir / "peer", "127.0.0.1", pool_port).start()
        systems["aiostratum-proxy"] = (peer.port, peer.pid)
        running.append(peer)
    except PeerUnavailable as exc:
        if report is not None:
            report.emit(backend="proxy", system="aiostratum-proxy", metric="unavailable",
                        value=0, unit="", reason=str(exc))  # fmt: skip
    return systems, running


def measure_scrape_cost(report: Reporter, pool_port: int, workdir: Path) -> None:
    """Added p99 at 1,000 shares/s with 10,000 workers' series to export, unscraped and
    scraped ten times a second, taking turns with direct."""
    upstream = f"stratum+tcp://127.0.0.1:{pool_port}"
    ours = ProxyProcess(workdir / "scrape", [upstream], log_level="WARNING").start()
    try:
        accepted = asyncio.run(one_share_per_worker(ours.listen_port, SCRAPE_WORKERS))
        url = f"http://{ours.host}:{ours.port}/metrics"
        p99: dict[str, list[float]] = {"direct": [], "ours": [], "ours_scraped": []}
        for _ in range(ROUNDS):
            for name, rounds in p99.items():
                port = pool_port if name == "direct" else ours.listen_port
                scraper = None
                if name == "ours_scraped":
                    scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, url,
                                                str(SCRAPES_PER_S)])  # fmt: skip
                try:
                    rounds.append(percentile(load(port, 50, 1000, SECONDS).latencies, 0.99))
                finally:
                    if scraper is not None:
                        scraper.kill()
                        scraper.wait()
    finally:
        ours.kill()
    added = {name: [(v - d) * 1e3 for v, d in zip(p99[name], p99["direct"], strict=True)]
             for name in ("ours", "ours_scraped")}  # fmt: skip
    for name, values in added.items():
        report.emit(backend="proxy", system=name, metric="added_p99_ms",
                    value=statistics.median(values), unit="ms", rate=1000,
                    workers=accepted, scrapes_per_s=SCRAPES_PER_S if name != "ours" else 0,
                    rounds=[round(v, 3) for v in values])  # fmt: skip
    base = statistics.median(added["ours"])
    report.emit(backend="proxy", system="ours", metric="scrape_p99_increase",
                value=(statistics.median(added["ours_scraped"]) - base) / max(base, 1e-9) * 100,
                unit="%", bar_pct=10)  # fmt: skip


def stop_all(running: list[Any]) -> None:
    for proc in running:
        proc.kill() if isinstance(proc, ProxyProcess) else proc.stop()


def main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    report = Reporter("proxy")
    workdir = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    try:
        with reference_pool() as pool:
            # Each measurement on fresh processes: holding 9,500 idle miners leaves a heap
            # (and, for the peer, a process that answers nothing afterwards).
            systems, running = start_systems(workdir / "idle", pool.port, report)
            measure_idle(report, systems)
            stop_all(running)
            systems, running = start_systems(workdir / "load", pool.port, None)
            measure_latency(report, systems, pool.pid)
            measure_throughput(report, systems)
            stop_all(running)
            hostile: dict[str, Any] = {"ours": ProxyProcess}
            if BEFORE:
                hostile["before"] = functools.partial(BeforeProxy, Path(BEFORE))
            measure_hostile_rss(report, pool.port, workdir / "hostile", hostile)
            measure_scrape_cost(report, pool.port, workdir)
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
