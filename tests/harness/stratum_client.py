"""A scripted Stratum V1 miner on a plain socket: it sends exactly what a test says, in
the order it says, and reads back exactly what came, so a test can put any firmware's
quirk on the wire (one id for every submit, ``"id": null``, bursts, odd hex, a close
or reset at a chosen moment)."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import orjson

from sharelog.work import Job
from stratum_sim.miners import solve

MASK = 0x1FFFE000


class ScriptedMiner:
    def __init__(self, port: int, login: str = "alice.rig1", *, timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = self.sock.makefile("rb")
        self.login = login
        self.job: Job | None = None
        self.notify: list[Any] | None = None  # the last job's params, as the pool sent them
        self.difficulty = 1.0
        self.extranonce1 = ""
        self.version_mask = 0
        self.replies: list[dict[str, Any]] = []  # responses, in the order they came
        self._en2 = 0

    def send(self, *messages: dict[str, Any] | bytes) -> None:
        data = b"".join(m if isinstance(m, bytes) else orjson.dumps(m) + b"\n" for m in messages)
        self.sock.sendall(data)

    def read(self) -> dict[str, Any]:
        """The next message; notifications update the job and difficulty as a miner's would."""
        line = self.reader.readline()
        if not line:
            raise ConnectionError("the proxy closed the connection")
        msg: dict[str, Any] = orjson.loads(line)
        if msg.get("method") == "mining.notify":
            self.notify = msg["params"]
            try:
                self.job = Job.from_notify(msg["params"])
            except ValueError:  # a broken pool's job: nothing to mine on
                self.job = None
        elif msg.get("method") == "mining.set_difficulty":
            self.difficulty = float(msg["params"][0])
        elif "method" not in msg:
            self.replies.append(msg)
        return msg

    def replies_until(self, count: int) -> list[dict[str, Any]]:
        while len(self.replies) < count:
            self.read()
        return self.replies[:count]

    def handshake(self) -> None:
        self.send(
            {"id": 1, "method": "mining.configure",
             "params": [["version-rolling"], {"version-rolling.mask": f"{MASK:08x}"}]},
            {"id": 2, "method": "mining.subscribe", "params": ["scripted/1"]},
            {"id": 3, "method": "mining.authorize", "params": [self.login, "x"]},
        )  # fmt: skip
        configure, subscribe, _ = self.replies_until(3)
        if isinstance(configure.get("result"), dict):
            self.version_mask = int(configure["result"].get("version-rolling.mask", "0"), 16)
        self.extranonce1 = subscribe["result"][1]
        while self.notify is None:
            self.read()
        self.replies.clear()

    def share(self, *, meets: bool = True, login: str | None = None,
              job_id: str | None = None) -> list[Any]:  # fmt: skip
        """Submit params of a freshly mined share (below target with ``meets=False``)."""
        assert self.job is not None
        self._en2 += 1
        en2 = struct.pack(">I", self._en2)
        vbits = 0x00002000 if self.version_mask else None
        prefix = self.job.header_prefix(bytes.fromhex(self.extranonce1), en2, self.job.ntime,
                                        vbits, self.version_mask)  # fmt: skip
        nonce = solve(prefix, self.difficulty, int(time.monotonic_ns()) & 0xFFFF, meets=meets)
        params: list[Any] = [login or self.login, job_id or self.job.job_id, en2.hex(),
                             f"{self.job.ntime:08x}", f"{nonce:08x}"]  # fmt: skip
        if vbits is not None:
            params.append(f"{vbits:08x}")
        return params

    def submit(self, params: list[Any], msg_id: Any = 4) -> None:
        self.send({"id": msg_id, "method": "mining.submit", "params": params})

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        self.reader.close()  # the socket really closes only when its file object has
        self.sock.close()


def verdict_of(reply: dict[str, Any]) -> int | None:
    """None for accepted, else the Stratum error code the miner was told."""
    if reply.get("result") is True and reply.get("error") is None:
        return None
    error = reply.get("error") or [20]
    return int(error[0]) if isinstance(error, list) else 20
