"""The demo's three ledgers, and whether they agree share for share.

What the pool judged (the reference pool's own ledger), what the miners heard (each
simulated miner's answers), and what the database holds. Every share a miner heard a
verdict for is in the database once with that verdict; those the proxy relayed are
exactly those the pool judged (the rest the proxy answered itself: a duplicate, a
stale job).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from stratum_sim.miners import MinerStats
from stratum_sim.pool import ReferencePool

VERDICT_NAMES = {None: "accepted", 21: "stale", 22: "duplicate", 23: "low difficulty"}
ANSWERED_BY_PROXY = "%(answered by proxy)"  # how the proxy marks its own verdicts


def verdict_name(code: int | None) -> str:
    return VERDICT_NAMES.get(code, f"rejected ({code})")


@dataclass(frozen=True)
class Ledgers:
    judged: Counter[int | None]  # by the pool
    heard: Counter[int | None]  # by the miners
    stored: Counter[int | None]  # in the database
    relayed: Counter[int | None]  # in the database, judged by the pool (not the proxy)
    distinct: int  # distinct share ids in the database
    accepted_hashrate: float  # H/s over the run, from the minute rollups
    exits: tuple[int, int]  # the proxy's and the writer's exit codes

    @property
    def rows(self) -> int:
        return sum(self.stored.values())

    @property
    def answered_by_proxy(self) -> int:
        return self.rows - sum(self.relayed.values())

    @property
    def agree(self) -> bool:
        return (self.exits == (0, 0) and self.stored == self.heard
                and self.relayed == self.judged and self.distinct == self.rows)  # fmt: skip

    def codes(self) -> list[int | None]:
        """Every verdict any ledger has, the most frequent first."""
        every = self.stored + self.heard + self.judged
        return [code for code, _ in every.most_common()]


def read_ledgers(
    database: Path, pool: ReferencePool, stats: list[MinerStats], exits: tuple[int, int],
    seconds: float,
) -> Ledgers:  # fmt: skip
    heard: Counter[int | None] = Counter()
    for s in stats:
        heard.update(s.answers)
    with sqlite3.connect(database) as conn:
        stored = Counter({code: n for code, n in conn.execute(
            "SELECT error_code, count(*) FROM share_events GROUP BY 1")})  # fmt: skip
        relayed = Counter({code: n for code, n in conn.execute(
            "SELECT error_code, count(*) FROM share_events "
            "WHERE error_message IS NULL OR error_message NOT LIKE ? GROUP BY 1",
            (ANSWERED_BY_PROXY,))})  # fmt: skip
        (distinct,) = conn.execute("SELECT count(DISTINCT share_id) FROM share_events").fetchone()
        (work,) = conn.execute(
            "SELECT sum(accepted_difficulty) FROM worker_stats_minute"
        ).fetchone()
    judged = Counter(v.code for v in pool.ledger)
    return Ledgers(judged, heard, stored, relayed, distinct, (work or 0.0) * 2**32 / seconds,
                   exits)  # fmt: skip


def summary(ledgers: Ledgers) -> list[str]:
    """The demo's closing lines."""
    held = ", ".join(f"{verdict_name(c)} {ledgers.stored[c]:,}" for c in ledgers.codes()
                     if ledgers.stored[c])  # fmt: skip
    verdict = "every share recorded once, with its verdict" if ledgers.agree else "MISMATCH"
    return [
        f"demo: {held}",
        f"demo: pool judged {sum(ledgers.judged.values()):,}, miners heard "
        f"{sum(ledgers.heard.values()):,}, database holds {ledgers.rows:,} "
        f"({ledgers.distinct:,} distinct; the proxy answered {ledgers.answered_by_proxy:,} "
        f"itself); accepted work {ledgers.accepted_hashrate / 1e3:,.1f} kH/s; {verdict}",
    ]
