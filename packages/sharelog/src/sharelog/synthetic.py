"""Synthetic share events with the shape of real ones, for the demo, benchmarks and tests.

Deterministic for a seed, so a benchmark's systems all load the very same rows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from sharelog.event import ShareEvent, Verdict, make_shard_key, make_share_id

_UPSTREAM = "stratum+tcp://pool.example:3333"


def synthetic_events(
    count: int,
    *,
    seed: int = 1,
    users: int = 200,
    workers_per_user: int = 4,
    start_us: int = 1_767_225_600_000_000,  # 2026-01-01T00:00:00Z
    rate_per_s: float = 20_000.0,
    pool: str = "demo",
) -> Iterator[ShareEvent]:
    rng = random.Random(seed)
    step = int(1e6 / rate_per_s) or 1
    accounts = [f"acct{u:04d}" for u in range(users)]
    shard_keys = {a: make_shard_key(a) for a in accounts}
    for i in range(count):
        user = accounts[rng.randrange(users)]
        worker = f"rig{rng.randrange(workers_per_user):02d}"
        at = start_us + i * step
        job = f"{(i // 5000):x}"
        en2 = f"{i:08x}"
        nonce = f"{rng.getrandbits(32):08x}"
        roll = rng.random()
        accepted = roll < 0.97
        code = None if accepted else (Verdict.STALE if roll < 0.99 else Verdict.LOW_DIFFICULTY)
        yield ShareEvent(
            share_id=make_share_id(at, _UPSTREAM, job, "f000000a", en2, "6744e5a0", nonce, None),
            pool=pool,
            upstream=_UPSTREAM,
            user_identity=user,
            worker=f"{user}.{worker}",
            shard_key=shard_keys[user],
            job_id=job,
            extranonce1="f000000a",
            extranonce2=en2,
            ntime="6744e5a0",
            nonce=nonce,
            version_bits=None,
            difficulty=1024.0,
            share_difficulty=1024.0 + rng.random() * 4096,
            accepted=accepted,
            error_code=None if code is None else int(code),
            error_message=None if code is None else code.name.lower().replace("_", " "),
            block_candidate=rng.random() < 1e-5,
            submitted_at=at,
            responded_at=at + 900,
            proxy_instance="demo-proxy-0",
        )
