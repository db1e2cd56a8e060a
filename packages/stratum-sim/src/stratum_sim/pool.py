"""A reference Stratum V1 pool: real jobs, real SHA256d validation, scripted faults.

It issues jobs with coinbase parts, a merkle branch and nbits, sets a (tiny) difficulty,
validates every submit the way a pool does, and answers accept or the right error code.
It keeps a ledger of every verdict it gave, which tests reconcile against the database.
Faults for tests: reject everything with a code, stall (never answer submits), or drop
every connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import ssl
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from sharelog.event_loop import prefer_uvloop
from sharelog.work import (
    DIFF1_TARGET,
    Job,
    hash_value,
    nbits_from_target,
    swap_words,
    target_of_difficulty,
)

VERSION_MASK = 0x1FFFE000


@dataclass
class Faults:
    """Scripted faults, and quirks real pool servers have."""

    reject_code: int | None = None
    reject_message: str | None = None  # what a reject_code rejection says, if not the usual
    stall: bool = False  # take submits and never answer them
    answer_delay_s: float = 0.0  # judge a submit at once, answer it this much later
    # answer mining.configure with an error, and send set_difficulty and notify before the
    # subscribe result, as some pool servers do with back-to-back requests
    eager_notify: bool = False
    subscribe_reply_delay_s: float = 0.0  # with eager_notify: the job first, then this wait
    # every job goes out with this nbits text, whatever it is (a broken pool's: no 32-bit
    # word, a negative or oversized target); shares are still judged under the real one
    notify_nbits: str | None = None


@dataclass
class Verdict:
    worker: str
    job_id: str
    extranonce1: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    code: int | None  # None: accepted


@dataclass(eq=False)  # identity: one per connection, kept in a set
class _Conn:
    writer: asyncio.StreamWriter
    extranonce1: str
    subscribed: bool = False
    authorized: set[str] = field(default_factory=set)
    version_rolling: bool = False
    difficulty: float = 1.0
    jobs: dict[str, tuple[Job, float]] = field(default_factory=dict)


def job_params(job_id: str, nbits: int, *, clean: bool) -> list[Any]:
    """``mining.notify`` params of a fresh job: random coinbase and branch, real nbits."""
    rnd = os.urandom
    return [
        job_id,
        swap_words(rnd(32)).hex(),
        "01000000010000000000000000000000000000000000000000000000000000000000000000" + rnd(8).hex(),
        rnd(12).hex() + "ffffffff",
        [rnd(32).hex(), rnd(32).hex()],
        "20000000",
        f"{nbits:08x}",
        f"{int(time.time()):08x}",
        clean,
    ]


class ReferencePool:
    def __init__(self, difficulty: float, *, network_difficulty: float = 1.0) -> None:
        self.difficulty = difficulty
        self.nbits = nbits_from_target(int(DIFF1_TARGET / network_difficulty))
        self.faults = Faults()
        self.ledger: list[Verdict] = []
        self.counts: Counter[int | None] = Counter()
        self.connections = 0  # accepted, ever: what a proxy in front of it has dialled
        self._conns: set[_Conn] = set()
        self._seen: set[tuple[str, ...]] = set()
        self._en1 = itertools.count(1)
        self._job_ids = itertools.count(1)
        self._job: Job | None = None
        self._server: asyncio.Server | None = None
        self.new_job(clean=True, broadcast=False)

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> int:
        self._server = await asyncio.start_server(self._serve, host, port, limit=1 << 16, ssl=tls)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_all(self) -> None:
        for conn in list(self._conns):
            conn.writer.close()

    # -- jobs -----------------------------------------------------------------------------

    def new_job(self, *, clean: bool, broadcast: bool = True) -> None:
        self._job_params = job_params(f"{next(self._job_ids):x}", self.nbits, clean=clean)
        self._job = Job.from_notify(self._job_params)
        if broadcast:
            for conn in list(self._conns):
                if conn.authorized:
                    self._notify(conn)

    def _notify(self, conn: _Conn) -> None:
        assert self._job is not None
        if self._job_params[8]:
            conn.jobs.clear()
        conn.difficulty = self.difficulty
        conn.jobs[self._job.job_id] = (self._job, conn.difficulty)
        self._send(
            conn, {"id": None, "method": "mining.set_difficulty", "params": [self.difficulty]}
        )
        params = list(self._job_params)
        if self.faults.notify_nbits is not None:
            params[6] = self.faults.notify_nbits
        self._send(conn, {"id": None, "method": "mining.notify", "params": params})

    # -- protocol -------------------------------------------------------------------------

    def _send(self, conn: _Conn, obj: dict[str, Any]) -> None:
        conn.writer.write(orjson.dumps(obj) + b"\n")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Conn(writer, f"{next(self._en1):08x}")
        self.connections += 1
        self._conns.add(conn)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    msg = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(msg, dict) and isinstance(msg.get("method"), str):
                    if self.faults.eager_notify and msg["method"] == "mining.subscribe":
                        # the job first; everything after the subscribe waits behind it
                        self._notify(conn)
                        await writer.drain()
                        await asyncio.sleep(self.faults.subscribe_reply_delay_s)
                    try:
                        self._handle(conn, msg)
                    except (TypeError, ValueError, IndexError, AttributeError):
                        # a real pool answers nonsense with an error, it doesn't hang up
                        self._reply(conn, msg.get("id"), None, [20, "malformed request", None])
                    await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            self._conns.discard(conn)
            writer.close()

    def _reply(self, conn: _Conn, msg_id: Any, result: Any, error: Any = None) -> None:
        self._send(conn, {"id": msg_id, "result": result, "error": error})

    def _reply_if_open(self, conn: _Conn, msg_id: Any, result: Any, error: Any) -> None:
        if not conn.writer.transport.is_closing():
            self._reply(conn, msg_id, result, error)

    def _handle(self, conn: _Conn, msg: dict[str, Any]) -> None:
        method, params, msg_id = msg["method"], msg.get("params") or [], msg.get("id")
        if method == "mining.subscribe":
            conn.subscribed = True
            subs = [["mining.set_difficulty", "1"], ["mining.notify", "1"]]
            self._reply(conn, msg_id, [subs, conn.extranonce1, 4])
        elif method == "mining.configure" and self.faults.eager_notify:
            self._reply(conn, msg_id, None, [20, "unknown method mining.configure", None])
        elif method == "mining.configure":
            conn.version_rolling = "version-rolling" in (params[0] if params else [])
            result = {"version-rolling": conn.version_rolling}
            if conn.version_rolling:
                result["version-rolling.mask"] = f"{VERSION_MASK:08x}"  # type: ignore[assignment]
            self._reply(conn, msg_id, result)
        elif method == "mining.authorize":
            conn.authorized.add(str(params[0]) if params else "")
            self._reply(conn, msg_id, True)
            if not self.faults.eager_notify:
                self._notify(conn)
        elif method in ("mining.extranonce.subscribe", "mining.suggest_difficulty"):
            self._reply(conn, msg_id, True)
        elif method == "mining.submit":
            self._submit(conn, msg_id, params)
        elif msg_id is not None:
            self._reply(conn, msg_id, None, [20, "unknown method", None])

    def _submit(self, conn: _Conn, msg_id: Any, params: list[Any]) -> None:
        if self.faults.stall:
            return
        code = self._validate(conn, params)
        verdict: tuple[Any, Any] = (True, None)
        if code is not None:
            message = _MESSAGES[code]
            if code == self.faults.reject_code and self.faults.reject_message is not None:
                message = self.faults.reject_message
            verdict = (None, [code, message, None])
        if self.faults.answer_delay_s:
            later = asyncio.get_running_loop().call_later
            later(self.faults.answer_delay_s, self._reply_if_open, conn, msg_id, *verdict)
        else:
            self._reply(conn, msg_id, *verdict)

    def _validate(self, conn: _Conn, params: list[Any]) -> int | None:
        try:
            worker, job_id, en2, ntime, nonce = (str(p) for p in params[:5])
            vbits = str(params[5]) if len(params) > 5 else None
        except ValueError:
            return 20
        code = self._judge(conn, worker, job_id, en2, ntime, nonce, vbits)
        if code is None and self.faults.reject_code is not None:
            code = self.faults.reject_code
        self.ledger.append(
            Verdict(worker, job_id, conn.extranonce1, en2, ntime, nonce, vbits, code)
        )
        self.counts[code] += 1
        return code

    def _judge(
        self, conn: _Conn, worker: str, job_id: str, en2: str, ntime: str, nonce: str,
        vbits: str | None,
    ) -> int | None:  # fmt: skip
        if not conn.subscribed:
            return 25
        if worker not in conn.authorized:
            return 24
        entry = conn.jobs.get(job_id)
        if entry is None:
            return 21
        key = (job_id, conn.extranonce1, en2, ntime, nonce, vbits or "")
        if key in self._seen:
            return 22
        job, difficulty = entry
        try:
            header = job.header(
                bytes.fromhex(conn.extranonce1), bytes.fromhex(en2), int(ntime, 16),
                int(nonce, 16), int(vbits, 16) if vbits else None,
                VERSION_MASK if conn.version_rolling else 0,
            )  # fmt: skip
        except ValueError:
            return 20
        if hash_value(header) > target_of_difficulty(difficulty):
            return 23
        self._seen.add(key)
        return None


_MESSAGES = {20: "other", 21: "job not found", 22: "duplicate share", 23: "low difficulty share",
             24: "unauthorized worker", 25: "not subscribed"}  # fmt: skip


async def _main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="stratum-refpool")
    p.add_argument("--port", type=int, default=3334)
    p.add_argument("--difficulty", type=float, default=2**-28)
    p.add_argument("--job-interval", type=float, default=30.0)
    args = p.parse_args(argv)
    pool = ReferencePool(args.difficulty)
    port = await pool.start("127.0.0.1", args.port)
    print(f"reference pool on 127.0.0.1:{port}", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        while True:
            await asyncio.sleep(args.job_interval)
            pool.new_job(clean=False)


if __name__ == "__main__":
    prefer_uvloop()
    asyncio.run(_main(sys.argv[1:]))
