"""Through the proxy with Stratum code nobody on the team wrote, both ways.

- a miner on npm's ``stratum-client``, which sends every submit with the id
  "mining.submit" and pairs verdicts by order alone, to our reference pool;
- our fleet and that miner to a pool on npm's ``stratum`` (node-stratum), which refuses
  ``mining.configure``, rejects with ``{"result": false, "error": null}`` and negative
  codes.

Every share is recorded once, with the verdict its client heard and the identity (the
extranonce1) under which its pool judged it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.foreign import ForeignPool, foreign_miner
from harness.proxy import ProxyProcess
from harness.sim import DIFFICULTY, SimLoop
from harness.spool_reader import spooled
from sharelog.event import ShareEvent
from stratum_sim.miners import Behaviour

Key = tuple[str, str, str, str, str]


def _key(share: dict[str, Any]) -> Key:
    return (share["job_id"], share["extranonce1"], share["extranonce2"], share["ntime"],
            share["nonce"])  # fmt: skip


def _event_key(e: ShareEvent) -> Key:
    return (e.job_id, e.extranonce1, e.extranonce2, e.ntime, e.nonce)


def _told(code: Any) -> int | None:
    """What a client heard, as the code the spool stores ("false": a plain rejection)."""
    return 20 if code == "false" else code


@pytest.fixture
def foreign_pool(tmp_path: Path) -> Iterator[ForeignPool]:
    pool = ForeignPool(tmp_path, DIFFICULTY).start()
    yield pool
    pool.stop()


def test_a_foreign_miner_through_the_proxy_to_our_pool(sim: SimLoop, tmp_path: Path) -> None:
    pool, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url]).start()
    told = foreign_miner(proxy.listen_port, "foreign.rig1", 70, tmp_path)
    assert len(told) == 70
    # every 5th share below target, every 7th a repeat of the one before (2 repeat a low one)
    assert Counter(_told(t["told"]) for t in told) == {None: 48, 23: 12, 22: 10}
    stored = Counter((_event_key(e), e.error_code) for e in spooled(proxy.spool))
    assert stored == Counter((_key(t), _told(t["told"])) for t in told)
    judged = {(v.job_id, v.extranonce1, v.extranonce2, v.ntime, v.nonce) for v in pool.ledger}
    assert judged == {_key(t) for t in told if t["told"] is None}, "the pool's identities"


def test_our_fleet_and_a_foreign_miner_through_the_proxy_to_a_foreign_pool(
    sim: SimLoop, tmp_path: Path, foreign_pool: ForeignPool
) -> None:
    proxy = ProxyProcess(tmp_path, [foreign_pool.url], local_reject=False).start()
    fleet = sim.fleet(proxy.listen_port, miners=8, shares_per_s=80, duration=3,
                      behaviour=Behaviour(low_difficulty_rate=0.1, keep_heard=True))  # fmt: skip
    foreign = foreign_miner(proxy.listen_port, "foreign.rig2", 70, tmp_path)
    stats = fleet.result(60)
    heard = [(h[:5], h[5]) for s in stats for h in s.heard]
    heard += [(_key(t), _told(t["told"])) for t in foreign]
    assert len(heard) > 200 and sum(s.submitted for s in stats) == len(heard) - 70
    events = spooled(proxy.spool)
    stored = Counter((_event_key(e), e.error_code) for e in events)
    assert stored == Counter(heard), "each share once, with the verdict its client heard"
    ledger = foreign_pool.ledger()
    by_pool = {_key(v): _told(v["code"]) for v in ledger}
    assert {k: c for k, c in stored} == by_pool, "the identity and verdict the pool gave"
    # its 10 repeats: 8 of an accepted share (-22), 2 of a low one (a plain false again)
    assert Counter(by_pool.values())[-22] == 8, "the foreign miner's duplicates, pool-judged"
    plain = [e for e in events if e.error_code == 20]
    assert plain and all(e.error_message == "rejected" for e in plain)
