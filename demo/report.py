"""The demo's picture: one self-contained HTML file a person opens in a browser.

Shares/s by verdict over the run (from the database, by the second each was
submitted), the writer's queue as the live line read it each second, each worker's
accepted hashrate (from the minute rollups), and the three ledgers side by side. No
script and nothing fetched: the plots are inline SVG (``svg.py``), so the file opens
anywhere, offline, as it was written.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from html import escape
from pathlib import Path

from demo.ledgers import Ledgers, verdict_name
from demo.svg import Series, bar_chart, line_chart, si

COLORS = {None: "#1b9e77", 21: "#d95f02", 22: "#7570b3", 23: "#e7298a"}  # by verdict
OTHER_COLOR = "#a6761d"
QUEUE_COLOR = "#1f78b4"
WORKER_COLOR = "#33a02c"


@dataclass(frozen=True)
class Sample:
    """One reading of the live line, once a second."""

    at: float  # seconds since the miners started
    queue: float  # shares in the spool not yet committed
    stored: float  # shares committed so far


@dataclass(frozen=True)
class Run:
    miners: int
    shares_per_s: float
    seconds: float
    database: Path


@dataclass(frozen=True)
class Picture:
    """Everything the report shows, read once."""

    run: Run
    ledgers: Ledgers
    samples: list[Sample]
    rates: dict[int | None, list[tuple[float, float]]]  # verdict -> (second, shares/s)
    workers: list[tuple[str, float]]  # (worker, accepted H/s), busiest first


def share_rates(database: Path) -> dict[int | None, list[tuple[float, float]]]:
    """Shares per second of submission, by verdict, from the first share on; a second
    without shares of a verdict is a 0 in its line."""
    with sqlite3.connect(database) as conn:
        found = conn.execute(
            "SELECT (submitted_at - (SELECT min(submitted_at) FROM share_events)) / 1000000,"
            " error_code, count(*) FROM share_events GROUP BY 1, 2"
        ).fetchall()
    if not found:
        return {}
    last = max(second for second, _, _ in found)
    rates: dict[int | None, list[tuple[float, float]]] = {}
    for code in {code for _, code, _ in found}:
        counts = {second: n for second, c, n in found if c == code}
        rates[code] = [(float(s), float(counts.get(s, 0))) for s in range(last + 1)]
    return rates


def worker_hashrates(database: Path, seconds: float) -> list[tuple[str, float]]:
    with sqlite3.connect(database) as conn:
        found = conn.execute(
            "SELECT worker, sum(accepted_difficulty) FROM worker_stats_minute "
            "GROUP BY user_identity, worker ORDER BY 2 DESC, 1"
        ).fetchall()
    return [(name, work * 2**32 / seconds) for name, work in found]


def gather(run: Run, ledgers: Ledgers, samples: list[Sample]) -> Picture:
    return Picture(run, ledgers, samples, share_rates(run.database),
                   worker_hashrates(run.database, run.seconds))  # fmt: skip


def _ledger_table(ledgers: Ledgers) -> str:
    head = ("<tr><th>verdict</th><th>miners heard</th><th>database holds</th>"
            "<th>of which the pool judged</th><th>pool judged</th><th></th></tr>")  # fmt: skip
    rows = []
    for code in ledgers.codes():
        heard, stored = ledgers.heard[code], ledgers.stored[code]
        relayed, judged = ledgers.relayed[code], ledgers.judged[code]
        ok = heard == stored and relayed == judged
        rows.append(f"<tr><td>{escape(verdict_name(code))}</td><td>{heard:,}</td>"
                    f"<td>{stored:,}</td><td>{relayed:,}</td><td>{judged:,}</td>"
                    f'<td class="{"ok" if ok else "bad"}">{"agree" if ok else "differ"}</td>'
                    "</tr>")  # fmt: skip
    total = (f"<tr><th>all</th><th>{sum(ledgers.heard.values()):,}</th><th>{ledgers.rows:,}</th>"
             f"<th>{sum(ledgers.relayed.values()):,}</th><th>{sum(ledgers.judged.values()):,}"
             "</th><th></th></tr>")  # fmt: skip
    return f'<table id="ledgers">{head}{"".join(rows)}{total}</table>'


def render(picture: Picture) -> str:
    run, ledgers = picture.run, picture.ledgers
    by_count = sorted(picture.rates.items(), key=lambda kv: -sum(y for _, y in kv[1]))
    rate_lines = [Series(verdict_name(code), COLORS.get(code, OTHER_COLOR), points)
                  for code, points in by_count]  # fmt: skip
    rejected_lines = [line for (code, _), line in zip(by_count, rate_lines, strict=True)
                      if code is not None]  # fmt: skip
    queue = [Series("queue (shares not yet committed)", QUEUE_COLOR,
                    [(s.at, s.queue) for s in picture.samples])]  # fmt: skip
    workers = picture.workers
    busiest = "".join(f"<tr><td>{escape(n)}</td><td>{escape(si(h, 'H/s'))}</td></tr>"
                      for n, h in workers[:10])  # fmt: skip
    verdict = ("Every share recorded once, with the verdict its miner heard."
               if ledgers.agree else "MISMATCH: the ledgers differ (see the table).")  # fmt: skip
    exits = f"proxy exited {ledgers.exits[0]}, writer exited {ledgers.exits[1]}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stratum-operator demo: {ledgers.rows:,} shares</title>
<style>
body {{ font-family: sans-serif; margin: 24px auto; max-width: 1140px; color: #222; }}
h1 {{ font-size: 22px; }} h2 {{ font-size: 17px; margin-top: 28px; }}
.verdict {{ font-size: 18px; padding: 10px 14px; border-radius: 4px; }}
.verdict.ok {{ background: #e6f4ea; }} .verdict.bad {{ background: #fde7e9; }}
table {{ border-collapse: collapse; margin: 8px 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
td.ok {{ color: #1b7e3c; }} td.bad {{ color: #b00020; font-weight: bold; }}
p.note {{ color: #555; }}
</style></head><body>
<h1>stratum-operator demo</h1>
<p>{run.miners:,} simulated miners at {run.shares_per_s:,.0f} shares/s for {run.seconds:.0f} s,
through the real <code>stratum-proxy</code> to a reference pool; the real
<code>stratum-writer</code> stored the proxy's spool in
<code>{escape(str(run.database))}</code>.</p>
<p class="verdict {"ok" if ledgers.agree else "bad"}" id="verdict">{escape(verdict)}
({ledgers.rows:,} shares, {ledgers.distinct:,} distinct; {escape(exits)})</p>

<h2>Shares per second, by verdict</h2>
<p class="note">From the database: each share by the second it was submitted.</p>
{line_chart(rate_lines, x_label="seconds since the first share", unit="/s")}
<p class="note">The rejected alone, on a scale of their own:</p>
{line_chart(rejected_lines, x_label="seconds since the first share", unit="/s")}

<h2>The writer's queue</h2>
<p class="note">Shares in the spool not yet committed, as the writer's metrics said each
second; it returns to 0 when everything is stored.</p>
{line_chart(queue, x_label="seconds since the miners started")}

<h2>Accepted hashrate per worker</h2>
<p class="note">Accepted difficulty &times; 2<sup>32</sup> over the run, from
<code>worker_stats_minute</code>: {len(workers):,} workers, busiest first; together
{escape(si(ledgers.accepted_hashrate, "H/s"))}.</p>
{bar_chart(workers, color=WORKER_COLOR, x_label="workers, busiest first", unit="H/s")}
<table id="busiest"><tr><th>busiest workers</th><th>accepted hashrate</th></tr>{busiest}</table>

<h2>Three ledgers, share for share</h2>
<p class="note">What the miners heard, what the database holds (and, of that, what the
pool itself judged: the proxy answers some shares itself), and what the pool judged.</p>
{_ledger_table(ledgers)}
</body></html>
"""


def write(picture: Picture, path: Path) -> Path:
    path.write_text(render(picture), encoding="utf-8")
    return path
