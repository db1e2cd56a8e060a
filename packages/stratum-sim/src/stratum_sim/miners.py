"""A load generator of miners that really mine (SHA256d, at a tiny difficulty).

Each miner configures version rolling, subscribes, authorizes, and submits shares that
truly meet the pool's target, at a set rate. Knobs make some of them misbehave the way
real firmware does: duplicates, below-target shares, stale jobs, one request id reused
for every submit, an HTTP CONNECT preamble naming the pool.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import ssl
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from sharelog.work import Job, hash_value, target_of_difficulty

VERSION_MASK = 0x1FFFE000


@dataclass
class Behaviour:
    duplicate_rate: float = 0.0
    low_difficulty_rate: float = 0.0
    stale_rate: float = 0.0
    version_rolling: bool = True
    reuse_ids: bool = False  # some firmware sends every submit with the same id
    route: str | None = None  # send "CONNECT <route> HTTP/1.1" first
    tls: bool = False  # stratum+ssl; the proxy's certificate is not verified (test CA)
    max_in_flight: int = 0  # > 0: wait for verdicts past this many unanswered submits
    keep_heard: bool = False  # remember every share answered and what it was told


@dataclass
class MinerStats:
    submitted: int = 0
    answers: Counter[int | None] = field(default_factory=Counter)  # None: accepted
    disconnects: int = 0
    latencies: list[float] = field(default_factory=list)  # submit -> verdict, seconds
    # with Behaviour.keep_heard: (job_id, extranonce1, extranonce2, ntime, nonce, code)
    heard: list[tuple[str, str, str, str, str, int | None]] = field(default_factory=list)


class Miner:
    def __init__(
        self, host: str, port: int, login: str, *, shares_per_s: float,
        behaviour: Behaviour | None = None, seed: int | None = None,
    ) -> None:  # fmt: skip
        self.host, self.port, self.login = host, port, login
        self.interval = 1.0 / shares_per_s if shares_per_s > 0 else 0.0
        self.behaviour = behaviour or Behaviour()
        self.rng = random.Random(seed)
        self.stats = MinerStats()
        self.job: Job | None = None
        self.difficulty = 1.0
        self.extranonce1 = b""
        self.en2_size = 4
        self.version_mask = 0
        self._en2 = self.rng.getrandbits(24)
        self._last: list[Any] | None = None
        self._ready = asyncio.Event()  # subscribed (extranonce1 known) and a job in hand
        self._subscribed = False
        self._outstanding = 0  # submits sent and not yet answered, this connection
        self._sent_at: dict[int, float] = {}  # request id -> perf_counter at send
        self._sent: dict[int, tuple[str, str, str, str, str]] = {}  # id -> share (keep_heard)
        self._settled = asyncio.Event()
        self._room = asyncio.Event()  # set when an answer frees a place in flight

    async def run(self, stop: asyncio.Event, *, reconnect: bool = True) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                await self._session(stop)
            self.stats.disconnects += 1
            if not reconnect:
                return
            await asyncio.sleep(0.2 + self.rng.random() * 0.3)

    async def _session(self, stop: asyncio.Event) -> None:
        tls = None
        if self.behaviour.tls:
            tls = ssl.create_default_context()
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20, ssl=tls)
        self._ready.clear()
        self._subscribed = False
        self.job = None
        try:
            if self.behaviour.route is not None:
                preamble = f"CONNECT {self.behaviour.route} HTTP/1.1\r\nHost: x\r\n\r\n"
                writer.write(preamble.encode())
                status = await reader.readline()
                if b" 200 " not in status:
                    raise OSError(f"CONNECT refused: {status!r}")
                while (await reader.readline()).strip():
                    pass
            send = _sender(writer)
            if self.behaviour.version_rolling:
                send(1, "mining.configure", [["version-rolling"],
                     {"version-rolling.mask": f"{VERSION_MASK:08x}"}])  # fmt: skip
            send(2, "mining.subscribe", ["stratum-sim/1.0"])
            send(3, "mining.authorize", [self.login, "x"])
            await writer.drain()
            listener = asyncio.create_task(self._listen(reader))
            try:
                await asyncio.wait_for(self._ready.wait(), 10)
                await self._mine(writer, stop, listener)
            finally:
                listener.cancel()
        finally:
            writer.close()

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            msg = orjson.loads(line)
            method = msg.get("method")
            if method == "mining.notify":
                self.job = Job.from_notify(msg["params"])
                self._check_ready()
            elif method == "mining.set_difficulty":
                self.difficulty = float(msg["params"][0])
            elif method == "mining.set_extranonce":
                self.extranonce1 = bytes.fromhex(msg["params"][0])
                self.en2_size = int(msg["params"][1])
            elif method is None:
                self._answer(msg)

    def _answer(self, msg: dict[str, Any]) -> None:
        msg_id, result, error = msg.get("id"), msg.get("result"), msg.get("error")
        if msg_id == 2 and isinstance(result, list):  # every session: a new extranonce1
            self.extranonce1 = bytes.fromhex(result[1])
            self.en2_size = int(result[2])
            self._subscribed = True
            self._check_ready()
        elif msg_id == 1 and isinstance(result, dict) and result.get("version-rolling"):
            self.version_mask = int(result["version-rolling.mask"], 16)
        elif isinstance(msg_id, int) and msg_id >= 4:
            code = None if result is True else (error or [20])[0]
            self.stats.answers[code] += 1
            share = self._sent.pop(msg_id, None)
            if share is not None:
                self.stats.heard.append((*share, code))
            sent_at = self._sent_at.pop(msg_id, None)
            if sent_at is not None:
                self.stats.latencies.append(time.perf_counter() - sent_at)
            self._outstanding -= 1
            self._room.set()
            if self._outstanding <= 0:
                self._settled.set()

    def _check_ready(self) -> None:
        """Mine only what can be mined: a pool may send a job before its subscribe reply,
        and a share hashed without the session's extranonce1 is worth nothing."""
        if self._subscribed and self.job is not None:
            self._ready.set()

    async def _mine(self, writer: asyncio.StreamWriter, stop: asyncio.Event,
                    listener: asyncio.Task[None]) -> None:  # fmt: skip
        send = _sender(writer)
        next_id = 4
        # a random phase: real miners find shares independently, not on a shared clock tick;
        # paced per session, so after a reconnect the miner resumes at its rate at once
        started = time.monotonic() + self.rng.random() * self.interval
        sent = 0
        self._outstanding = 0
        self._sent_at.clear()
        self._sent.clear()
        limit = self.behaviour.max_in_flight
        while not stop.is_set() and not listener.done():
            while limit and self._outstanding >= limit and not listener.done():
                self._room.clear()  # closed loop: as real firmware, a bounded queue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), 1)
            params = self._next_share()
            if not self.behaviour.reuse_ids:
                self._sent_at[next_id] = time.perf_counter()
                if self.behaviour.keep_heard:
                    job_id, en2, ntime, nonce = params[1:5]
                    self._sent[next_id] = (job_id, self.extranonce1.hex(), en2, ntime, nonce)
            send(4 if self.behaviour.reuse_ids else next_id, "mining.submit", params)
            next_id += 1
            sent += 1
            self.stats.submitted += 1
            self._outstanding += 1
            self._settled.clear()
            await writer.drain()
            if self.interval:
                ahead = started + sent * self.interval - time.monotonic()
                await asyncio.sleep(max(ahead, 0))
            else:
                await asyncio.sleep(0)
        if self._outstanding > 0 and not listener.done():
            # Stop as a miner that is switched off cleanly: hear every verdict first.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), 5)

    def _next_share(self) -> list[Any]:
        b, roll = self.behaviour, self.rng.random()
        if self._last is not None and roll < b.duplicate_rate:
            return list(self._last)
        assert self.job is not None
        job = self.job
        self._en2 = (self._en2 + 1) % (1 << (8 * self.en2_size))
        en2 = self._en2.to_bytes(self.en2_size, "big")
        ntime = job.ntime
        vbits = self.rng.getrandbits(32) & self.version_mask if self.version_mask else None
        prefix = job.header_prefix(self.extranonce1, en2, ntime, vbits, self.version_mask)
        low = roll < b.duplicate_rate + b.low_difficulty_rate
        nonce = solve(prefix, self.difficulty, self.rng.getrandbits(32), meets=not low)
        job_id = job.job_id
        if b.stale_rate and roll > 1 - b.stale_rate:
            job_id = "deadbeef"
        params: list[Any] = [self.login, job_id, en2.hex(), f"{ntime:08x}", f"{nonce:08x}"]
        if vbits is not None:
            params.append(f"{vbits:08x}")
        self._last = params
        return params


def solve(prefix: bytes, difficulty: float, start: int, *, meets: bool = True) -> int:
    """Real hashing: the first nonce from ``start`` whose header meets the target.

    With ``meets=False``, one that misses it: a below-target share, as buggy firmware sends.
    """
    target = target_of_difficulty(difficulty)
    nonce = start & 0xFFFFFFFF
    while (hash_value(prefix + nonce.to_bytes(4, "little")) <= target) != meets:
        nonce = (nonce + 1) & 0xFFFFFFFF
    return nonce


def _sender(writer: asyncio.StreamWriter) -> Any:
    def send(msg_id: int, method: str, params: list[Any]) -> None:
        writer.write(orjson.dumps({"id": msg_id, "method": method, "params": params}) + b"\n")

    return send


async def run_fleet(
    host: str, port: int, miners: int, shares_per_s: float, duration: float,
    behaviour: Behaviour | None = None, accounts: int = 50,
) -> list[MinerStats]:  # fmt: skip
    """N miners for ``duration`` seconds at ``shares_per_s`` in total."""
    stop = asyncio.Event()
    fleet = [
        Miner(host, port, f"acct{i % accounts:03d}.rig{i:05d}", shares_per_s=shares_per_s / miners,
              behaviour=behaviour, seed=i)
        for i in range(miners)
    ]  # fmt: skip
    tasks = [asyncio.create_task(m.run(stop)) for m in fleet]
    await asyncio.sleep(duration)
    stop.set()
    await asyncio.wait(tasks, timeout=6)  # each miner hears its last verdicts, then leaves
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [m.stats for m in fleet]


def _main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="stratum-loadgen")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3333)
    p.add_argument("--miners", type=int, default=100)
    p.add_argument("--rate", type=float, default=500.0, help="shares/s in total")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--bad-rate", type=float, default=0.0, help="share of each kind of bad submit")
    args = p.parse_args(argv)
    behaviour = Behaviour(duplicate_rate=args.bad_rate, low_difficulty_rate=args.bad_rate,
                          stale_rate=args.bad_rate)  # fmt: skip
    stats = asyncio.run(run_fleet(args.host, args.port, args.miners, args.rate, args.duration,
                                  behaviour))  # fmt: skip
    answers: Counter[str] = Counter()
    for s in stats:
        for code, n in s.answers.items():
            answers["accepted" if code is None else str(code)] += n
    print(json.dumps({"submitted": sum(s.submitted for s in stats), "answers": answers}))


if __name__ == "__main__":
    _main(sys.argv[1:])
