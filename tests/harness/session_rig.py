"""A session with a scripted pool on one side and a scripted miner on the other, for the
pure protocol tests: shares mined for real (SHA256d at a tiny difficulty) with the load
generator's own search, against jobs made the way the reference pool makes them."""

from __future__ import annotations

from typing import Any

import orjson

from sharelog.event import ShareEvent
from sharelog.work import DIFF1_TARGET, Job, nbits_from_target
from stratum_proxy.admission import Refusal
from stratum_proxy.messages import parse
from stratum_proxy.session import MinerSession, Outbox, SessionSettings
from stratum_sim.miners import solve
from stratum_sim.pool import job_params

DIFF = 2**-28  # about one hash in sixteen meets it
EN1 = "0000abcd"
MASK = 0x1FFFE000


def line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


class Rig:
    """A session with a scripted pool on one side and a scripted miner on the other."""

    def __init__(self, **settings: Any) -> None:
        self.session = MinerSession(
            SessionSettings(pool="p", proxy_instance="pod-0", **settings), "stratum+tcp://pool:1"
        )
        self.now = 0.0
        self.to_pool: list[dict[str, Any]] = []
        self.to_miner: list[dict[str, Any]] = []
        self.events: list[ShareEvent] = []
        self.refused: list[Refusal] = []

    def _take(self, out: Outbox) -> None:
        self.to_pool += [orjson.loads(x) for x in out.to_upstream]
        self.to_miner += [orjson.loads(x) for x in out.to_miner]
        self.events += out.events
        self.refused += out.refused

    def miner(self, msg_id: Any, method: str, params: list[Any]) -> None:
        raw = line({"id": msg_id, "method": method, "params": params})
        out = Outbox()
        self.session.from_miner(parse(raw.strip()), raw, out)
        self._take(out)

    def pool(self, obj: dict[str, Any]) -> None:
        raw = line(obj)
        out = Outbox()
        self.session.from_upstream(parse(raw.strip()), raw, out)
        self._take(out)

    def answer_last(self, result: Any, error: Any = None) -> None:
        self.pool({"id": self.to_pool[-1]["id"], "result": result, "error": error})

    def handshake(self, login: str = "alice.rig1", *, network_difficulty: float = 1e6) -> Job:
        self.miner(
            1, "mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff"}]
        )
        self.answer_last({"version-rolling": True, "version-rolling.mask": f"{MASK:08x}"})
        self.miner(2, "mining.subscribe", ["test/1"])
        self.answer_last([[["mining.notify", "1"]], EN1, 4])
        self.miner(3, "mining.authorize", [login, "x"])
        self.answer_last(True)
        self.pool({"id": None, "method": "mining.set_difficulty", "params": [DIFF]})
        nbits = nbits_from_target(int(DIFF1_TARGET / network_difficulty))
        params = job_params("j1", nbits, clean=True)
        self.pool({"id": None, "method": "mining.notify", "params": params})
        return Job.from_notify(params)

    def share(
        self, job: Job, en2: int, *, login: str = "alice.rig1", meets: bool = True,
        vbits: int = 0x00002000, en1: str = EN1,
    ) -> list[Any]:  # fmt: skip
        en2_bytes = en2.to_bytes(4, "big")
        prefix = job.header_prefix(bytes.fromhex(en1), en2_bytes, job.ntime, vbits, MASK)
        nonce = solve(prefix, DIFF, 0, meets=meets)
        return [login, job.job_id, en2_bytes.hex(), f"{job.ntime:08x}", f"{nonce:08x}",
                f"{vbits:08x}"]  # fmt: skip
