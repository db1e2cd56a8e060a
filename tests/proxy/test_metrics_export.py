"""/metrics is served off the miners' event loop: scraping it in a loop, with 10,000
worker series to export, does not make the proxy late to answer its miners."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from harness.workers import one_share_per_worker
from stratum_proxy.metrics import MAX_WORKER_SERIES, WorkerHashrate

WORKERS = 10_000
WORKER_SERIES = "stratum_proxy_worker_hashrate{"
# Scrapes /metrics as fast as it answers until killed; prints how many it made.
SCRAPER = """
import signal, sys, urllib.request
done = 0
signal.signal(signal.SIGTERM, lambda *_: (print(done, flush=True), sys.exit(0)))
while True:
    urllib.request.urlopen(sys.argv[1], timeout=30).read()
    done += 1
"""


def _worker_series(proxy: ProxyProcess) -> int:
    url = f"http://{proxy.host}:{proxy.port}/metrics"
    with urllib.request.urlopen(url, timeout=30) as r:
        return sum(line.startswith(WORKER_SERIES) for line in r.read().decode().splitlines())


def _answer_delays(port: int, seconds: float) -> list[float]:
    """How late the proxy's loop answers: a line it answers itself (not JSON), every 20 ms."""
    delays = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        sock.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
        reader.readline()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            sock.sendall(b"ping\n")
            assert b"-32700" in reader.readline()
            delays.append(time.perf_counter() - started)
            time.sleep(0.02)
    return delays


def test_scraping_in_a_loop_with_10000_workers_does_not_stall_the_miners(
    sim: SimLoop, tmp_path: Path
) -> None:
    _, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url], max_protocol_errors=100_000).start()
    assert sim.run(one_share_per_worker(proxy.listen_port, WORKERS)) == WORKERS
    deadline = time.monotonic() + 30
    while _worker_series(proxy) < WORKERS and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _worker_series(proxy) == WORKERS
    quiet = _answer_delays(proxy.listen_port, 2)
    scraper = subprocess.Popen([sys.executable, "-c", SCRAPER,
                                f"http://{proxy.host}:{proxy.port}/metrics"],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(1)  # scraping in full swing
        scraped = _answer_delays(proxy.listen_port, 5)
    finally:
        scraper.terminate()
        out, _ = scraper.communicate(timeout=30)
    assert int(out.split()[-1]) >= 5, "the scrape loop ran"
    p50 = statistics.median(scraped)
    p90 = statistics.quantiles(scraped, n=10)[-1]
    # on two shared cores a miner's answer is a few ms late under any load; a scrape on the
    # miners' loop made it 100-300 ms
    assert p50 < 0.025 and p90 < 0.08, (
        f"answers while scraped: p50 {p50 * 1e3:.1f} ms, p90 {p90 * 1e3:.1f} ms; "
        f"unscraped p50 {statistics.median(quiet) * 1e3:.1f} ms"
    )


def test_the_busiest_10000_workers_are_exported_whatever_their_names() -> None:
    workers = WorkerHashrate()
    now = time.monotonic()
    for i in range(MAX_WORKER_SERIES):
        workers.add(f"farm.rig{i}", 2.0, now)
    workers.add('odd"name\\with\nall', 3.0, now)
    workers.add("farm.idle", 1.0, now)  # the least busy: one past the bound
    families = list(text_string_to_metric_families(workers.render(now).decode()))
    samples = {s.labels["worker"]: s.value for s in families[0].samples}
    assert len(samples) == MAX_WORKER_SERIES and "farm.idle" not in samples
    assert samples['odd"name\\with\nall'] == 3.0 * 2**32 / 600
