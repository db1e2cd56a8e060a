"""What a hostile miner costs the proxy's memory, and what a scrape loop costs miners.

``hostile_rss_kb``: for each kind of connection, a fresh proxy, an honest fleet mining
beside it, then ``HOSTILE`` connections of that kind; the proxy's RSS growth (to where
it stops moving) divided by their number. ``honest_idle`` (subscribed, authorized,
silent) is the yardstick: the bar is no kind more than 64 KB above it
(``above_honest_kb``). ``honest_accepted`` is the share of the fleet beside that was
accepted: 1.0 when the hostile connections hurt no one.

The kinds: ``unique_solutions`` (500 distinct solutions each, answers read);
``max_lines`` (twenty lines of the longest length allowed, then one such line never
ended); ``pipelined_stalled`` (submits pipelined to a pool that never answers, up to
just under the caps of the build before: 256 in flight, 1,024 answers waiting); ``never_reads`` (a tiny
receive buffer, requests that draw 300 KB of answers and jobs, never a byte read);
``mass_authorize`` (a thousand names authorized on one connection).

The proxy answers with whatever caps its build has: a build that cuts such a
connection off earlier, or keeps less for it, shows lower numbers here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

import orjson

from bench.report import Reporter
from harness.procfs import rss_kb
from harness.proxy import ProxyProcess
from harness.sim import SimLoop
from stratum_sim.miners import run_fleet

HOSTILE = 200
BAR_KB = 64
STALLED_ROUTE = "stalled"
Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def _request(msg_id: int, method: str, params: list[object]) -> bytes:
    return orjson.dumps({"id": msg_id, "method": method, "params": params}) + b"\n"


async def _open(port: int, i: int, *, route: str | None = None,
                rcvbuf: int | None = None) -> tuple[Streams, str]:  # fmt: skip
    """Subscribed and authorized as ``hostile.<i>``; the streams and the job id."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
    if route is not None:
        writer.write(f"CONNECT {route} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        while (await reader.readline()).strip():
            pass
    writer.write(_request(1, "mining.subscribe", []))
    writer.write(_request(2, "mining.authorize", [f"hostile.{i}", "x"]))
    while True:
        msg = orjson.loads(await reader.readline())
        if msg.get("method") == "mining.notify":
            return (reader, writer), str(msg["params"][0])


def _submits(job_id: str, count: int, first_id: int, i: int) -> bytes:
    return b"".join(
        _request(first_id + n, "mining.submit",
                 [f"hostile.{i}", job_id, f"{i:08x}", "00000000", f"{n:08x}"])
        for n in range(count)
    )  # fmt: skip


async def _answers(reader: asyncio.StreamReader, count: int) -> None:
    seen = 0
    with contextlib.suppress(OSError):  # reset: cut off, and what it held is freed
        while seen < count:
            line = await reader.readline()
            if not line:
                return
            seen += b'"result"' in line


async def honest_idle(streams: Streams, job_id: str, i: int, max_line: int) -> None:
    pass  # subscribed, authorized, silent


async def unique_solutions(streams: Streams, job_id: str, i: int, max_line: int) -> None:
    reader, writer = streams
    writer.write(_submits(job_id, 500, 10, i))
    await _answers(reader, 500)


async def max_lines(streams: Streams, job_id: str, i: int, max_line: int) -> None:
    reader, writer = streams
    pad = "a" * (max_line - len(_request(10, "mining.suggest_difficulty", [""])) - 1)
    for n in range(20):
        writer.write(_request(10 + n, "mining.suggest_difficulty", [pad]))
    await _answers(reader, 20)
    writer.write(_request(99, "mining.suggest_difficulty", [pad])[:-2])  # never ended


async def pipelined_stalled(streams: Streams, job_id: str, i: int, max_line: int) -> None:
    # read nothing more: the answers wait behind the submits the pool never answers
    streams[1].write(_submits(job_id, 256 + 1014, 10, i))


async def never_reads(streams: Streams, job_id: str, i: int, max_line: int) -> None:
    data = [_request(10 + n, "mining.authorize", [f"hostile.{i}x{n}", "x"]) for n in range(300)]
    data += [_request(400 + n, "mining.extranonce.subscribe", []) for n in range(3000)]
    streams[1].write(b"".join(data))


async def mass_authorize(streams: Streams, job_id: str, i: int, max_line: int) -> None:
    reader, writer = streams
    writer.write(b"".join(_request(10 + n, "mining.authorize", [f"hostile.{i}x{n}", "x"])
                          for n in range(1000)))  # fmt: skip
    await _answers(reader, 1000)


class Kind(NamedTuple):
    act: Callable[[Streams, str, int, int], Awaitable[None]]
    route: str | None = None  # CONNECT preamble: the stalled pool
    rcvbuf: int | None = None  # a receive buffer this small: a miner that never reads


KINDS: dict[str, Kind] = {
    "honest_idle": Kind(honest_idle),
    "unique_solutions": Kind(unique_solutions),
    "max_lines": Kind(max_lines),
    "pipelined_stalled": Kind(pipelined_stalled, route=STALLED_ROUTE),
    "never_reads": Kind(never_reads, rcvbuf=4096),
    "mass_authorize": Kind(mass_authorize),
}


async def _open_all(port: int, kind: Kind) -> list[tuple[Streams, str]]:
    """``HOSTILE`` sessions, opened 20 at a time (so the pool is not what fails)."""
    opened: list[tuple[Streams, str]] = []
    for first in range(0, HOSTILE, 20):
        opened += await asyncio.gather(
            *(
                _open(port, i, route=kind.route, rcvbuf=kind.rcvbuf)
                for i in range(first, first + 20)
            )
        )
    return opened


async def _settled_rss(pid: int, limit_s: float = 20) -> int:
    """The RSS once it has not moved for three seconds (or the highest seen by the limit)."""
    last, stable, peak = -1, 0, 0
    deadline = time.monotonic() + limit_s
    while stable < 3 and time.monotonic() < deadline:
        await asyncio.sleep(1)
        now = rss_kb(pid)
        peak = max(peak, now)
        stable = stable + 1 if now == last else 0
        last = now
    return peak


async def _one_kind(proxy: ProxyProcess, kind: Kind) -> tuple[float, float]:
    """(RSS growth per hostile connection in KB, share of the honest fleet accepted).
    A connection the proxy cuts off along the way counts like the others: its cost is
    whatever the proxy held for it until then."""
    assert proxy.proc is not None
    pid, port = proxy.proc.pid, proxy.listen_port
    fleet = asyncio.create_task(run_fleet("127.0.0.1", port, 10, 100, 30))
    await asyncio.sleep(3)
    before = rss_kb(pid)
    max_line = int(proxy.config.get("max_line_bytes", 16384))
    opened = await _open_all(port, kind)
    await asyncio.gather(*(kind.act(streams, job_id, i, max_line)
                           for i, (streams, job_id) in enumerate(opened)),
                         return_exceptions=True)  # fmt: skip
    peak = await _settled_rss(pid)
    for (_, writer), _ in opened:
        writer.close()
    stats = await fleet
    submitted = sum(s.submitted for s in stats)
    accepted = sum(s.answers[None] for s in stats)
    return (peak - before) / HOSTILE, accepted / max(submitted, 1)


Proxy = Callable[..., ProxyProcess]  # (workdir, upstreams, **settings) -> a proxy to start


def measure_hostile_rss(
    report: Reporter, pool_port: int, workdir: Path, systems: dict[str, Proxy]
) -> None:
    sim = SimLoop()  # the stalled pool, in a thread of this process
    try:
        stalled, stalled_url = sim.pool()
        stalled.faults.stall = True
        upstream = f"stratum+tcp://127.0.0.1:{pool_port}"
        for system, make in systems.items():
            per_kind: dict[str, float] = {}
            for name, kind in KINDS.items():
                proxy = make(workdir / system / name, [upstream],
                             routes={STALLED_ROUTE: [stalled_url]},
                             max_connections_per_ip=HOSTILE + 100, log_level="ERROR").start()  # fmt: skip
                try:
                    per_kind[name], honest = asyncio.run(_one_kind(proxy, kind))
                    closed = {k.split('"')[1]: v for k, v in proxy.metrics().items()
                              if k.startswith("stratum_proxy_disconnects_total{")}  # fmt: skip
                finally:
                    proxy.kill()
                report.emit(backend="proxy", system=system, metric="hostile_rss_kb",
                            value=per_kind[name], unit="KB", kind=name, connections=HOSTILE,
                            honest_accepted=round(honest, 4), disconnects=closed)  # fmt: skip
            for name, value in per_kind.items():
                above = value - per_kind["honest_idle"]
                report.emit(backend="proxy", system=system, metric="above_honest_kb",
                            value=above, unit="KB", kind=name, bar_kb=BAR_KB,
                            within=above <= BAR_KB)  # fmt: skip
    finally:
        with contextlib.suppress(Exception):
            sim.close()
