"""``kubectl stratum status`` as text: pure, from what ``gather`` found. Messages (the
pool's conditions, its Events) are shown through ``redaction``, whoever wrote them."""

from __future__ import annotations

from typing import Any

from stratum_operator.plugin.gather import PoolStatus
from stratum_operator.redaction import redact_text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]  # fmt: skip


def _or_dash(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def render(found: PoolStatus) -> str:
    traffic = found.traffic
    lines = [
        f"Pool:            {found.namespace}/{found.name}",
        f"Phase:           {found.phase}" + (f" ({found.ready} ready)" if found.ready else ""),
        f"Miners connect:  {found.miners_address}",
        f"Traffic:         {_or_dash(traffic.get('miners'))} miners, "
        f"{_or_dash(traffic.get('sharesPerSecond'))} shares/s, "
        f"{_or_dash(traffic.get('queueDepth'))} shares queued",
        "",
        "Conditions:",
        *_table(
            ["TYPE", "STATUS", "REASON", "MESSAGE"],
            [
                [
                    c.get("type", ""),
                    c.get("status", ""),
                    c.get("reason", ""),
                    redact_text(c.get("message", "")),
                ]
                for c in found.conditions
            ],
        ),
        "",
        "Pods:",
        *_table(
            ["NAME", "READY", "MINERS", "SHARES", "QUEUE", "OLDEST(s)", "WORKERS", "NOTE"],
            [
                [
                    p.name,
                    "yes" if p.ready else "no",
                    _or_dash(p.miners),
                    _or_dash(None if p.shares_total is None else int(p.shares_total)),
                    _or_dash(p.queue),
                    _or_dash(None if p.oldest_age_s is None else round(p.oldest_age_s, 1)),
                    _or_dash(p.workers),
                    p.unreadable,
                ]
                for p in found.pods
            ],
        ),
    ]
    decisions = found.writer.get("decisions", [])
    lines += ["", f"Writer workers:  {_or_dash(found.writer.get('workers'))} "
              f"({_or_dash(found.writer.get('lastReason'))})"]  # fmt: skip
    if decisions:
        lines += ["Last scaling decisions:"]
        lines += _table(["TIME", "WORKERS", "REASON", "INPUTS"],
                        [[d.get("time", ""), str(d.get("workers", "")), d.get("reason", ""),
                          ", ".join(f"{k}={v}" for k, v in d.items()
                                    if k not in ("time", "workers", "reason"))]
                         for d in decisions])  # fmt: skip
    lines += ["", "Jobs:"]
    lines += (_table(["COMPONENT", "NAME", "STATE"],
                     [[j["component"], j["name"], j["state"]] for j in found.jobs])
              if found.jobs else ["  none"])  # fmt: skip
    if found.retention:
        kept = found.retention
        lines += ["", f"Retention:       kept from {_or_dash(kept.get('oldestRetainedDay'))}, "
                  f"oldest share {_or_dash(kept.get('oldestShare'))}, "
                  f"last run {_or_dash(kept.get('lastRun'))}"]  # fmt: skip
    lines += ["", "Recent warnings:"]
    lines += (_table(["LAST SEEN", "REASON", "COUNT", "MESSAGE"],
                     [[_or_dash(w["last"]), w["reason"] or "", str(w["count"]),
                       redact_text(w["message"] or "")] for w in found.warnings])
              if found.warnings else ["  none"])  # fmt: skip
    return "\n".join(lines) + "\n"
