"""Many workers at once: distinct names, each with one real share the pool accepts.

What a proxy's per-worker metrics see from a big farm, made quickly: 50 names authorized
on each connection (under any per-connection cap on names), one share mined for each.
"""

from __future__ import annotations

import asyncio

import orjson

from sharelog.work import Job
from stratum_sim.miners import solve

PER_CONNECTION = 50  # names authorized on one connection


async def _one_connection(port: int, first: int) -> int:
    """Authorize ``PER_CONNECTION`` workers on one connection, and submit one real
    share for each; how many the pool accepted."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    names = [f"farm{first // 1000}.rig{first + i}" for i in range(PER_CONNECTION)]
    lines = [b'{"id":1,"method":"mining.subscribe","params":[]}']
    lines += [orjson.dumps({"id": 2 + i, "method": "mining.authorize", "params": [n, "x"]})
              for i, n in enumerate(names)]  # fmt: skip
    writer.write(b"\n".join(lines) + b"\n")
    extranonce1, size, job, difficulty, authorized = b"", 4, None, 1.0, 0
    while job is None or authorized < len(names) or not extranonce1:
        msg = orjson.loads(await reader.readline())
        if msg.get("id") == 1:
            extranonce1, size = bytes.fromhex(msg["result"][1]), msg["result"][2]
        elif msg.get("method") == "mining.notify":
            job = Job.from_notify(msg["params"])
        elif msg.get("method") == "mining.set_difficulty":
            difficulty = msg["params"][0]
        elif msg.get("result") is True:
            authorized += 1
    for i, name in enumerate(names):
        en2 = i.to_bytes(size, "big")
        nonce = solve(job.header_prefix(extranonce1, en2, job.ntime), difficulty, 0)
        params = [name, job.job_id, en2.hex(), f"{job.ntime:08x}", f"{nonce:08x}"]
        writer.write(orjson.dumps({"id": 100 + i, "method": "mining.submit", "params": params}))
        writer.write(b"\n")
    accepted = answered = 0
    while answered < len(names):
        msg = orjson.loads(await reader.readline())
        if isinstance(msg.get("id"), int) and msg["id"] >= 100:  # not a job still coming
            answered += 1
            accepted += msg.get("result") is True
    writer.close()
    return accepted


async def one_share_per_worker(port: int, workers: int) -> int:
    """``workers`` distinct workers (a multiple of 50) with one accepted share each, 50
    connections at a time; how many shares were accepted."""
    accepted = 0
    for batch in range(0, workers, 50 * PER_CONNECTION):
        firsts = range(batch, min(workers, batch + 50 * PER_CONNECTION), PER_CONNECTION)
        accepted += sum(await asyncio.gather(*(_one_connection(port, f) for f in firsts)))
    return accepted
