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
"""

from __future__ import annotations

import asyncio
import contextlib
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
from bench.report import Reporter
from harness.procfs import cpu_seconds, rss_kb, runqueue_wait_seconds
from harness.proxy import ProxyProcess
from stratum_sim.miners import Behaviour, MinerStats, run_fleet

IDLE = int(os.environ.get("BENCH_IDLE_CONNECTIONS", "10000"))
SECONDS = float(os.environ.get("BENCH_PROXY_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_PROXY_ROUNDS", "3"))
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
    """As many shares as 400 closed-loop miners get relayed; and each share's CPU cost."""
    for name, (port, pid) in systems.items():
        cpu0, wall0 = (cpu_seconds(pid) if pid else 0.0), time.perf_counter()
        run = load(port, 400, 1e6, SECONDS, CLOSED_LOOP)
        achieved = run.rate
        report.emit(backend="proxy", system=name, metric="shares_per_s", value=achieved,
                    unit="shares/s", submitted=run.submitted, answered=run.answered)  # fmt: skip
        if pid:
            used = cpu_seconds(pid) - cpu0
            shares = achieved * (time.perf_counter() - wall0)
            report.emit(backend="proxy", system=name, metric="shares_per_cpu_s",
                        value=shares / max(used, 1e-9), unit="shares/cpu-s")  # fmt: skip


def measure_idle(report: Reporter, systems: Systems) -> None:
    # A subscribed miner is two sockets in our proxy (miner side, pool side); the
    # machine's hard limit on open files decides how many fit in one process.
    idle = min(IDLE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 1000) // 2)
    for name, (port, pid) in systems.items():
        if pid is None:
            continue
        per_conn, opened = idle_rss(port, pid, idle)
        report.emit(backend="proxy", system=name, metric="rss_per_conn_kb",
                    value=per_conn, unit="KB", connections=opened,
                    note=f"{IDLE} asked; open-file hard limit allows {idle}")  # fmt: skip


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
    try:
        peer = AiostratumProxy(workdir / "peer", "127.0.0.1", pool_port).start()
        systems["aiostratum-proxy"] = (peer.port, peer.pid)
        running.append(peer)
    except PeerUnavailable as exc:
        if report is not None:
            report.emit(backend="proxy", system="aiostratum-proxy", metric="unavailable",
                        value=0, unit="", reason=str(exc))  # fmt: skip
    return systems, running


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
    finally:
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
