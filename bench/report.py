"""Benchmark results as JSON lines, on stdout and in bench/results/<name>.json.

Each line has at least bench, system, metric, value, unit. ``ratios`` adds the
comparisons the targets are stated in, computed from lines measured in the same run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


class Reporter:
    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.lines: list[dict[str, Any]] = []
        RESULTS.mkdir(parents=True, exist_ok=True)
        self.path = RESULTS / f"{bench}.json"
        self.path.write_text("")

    def emit(self, *, system: str, metric: str, value: float, unit: str, **extra: Any) -> None:
        line = {"bench": self.bench, "system": system, "metric": metric,
                "value": round(value, 3), "unit": unit, **extra}  # fmt: skip
        self.lines.append(line)
        text = json.dumps(line)
        print(text, flush=True)
        with self.path.open("a") as fh:
            fh.write(text + "\n")
        sys.stdout.flush()

    def value(self, backend: str, system: str, metric: str) -> float | None:
        for line in self.lines:
            if (line.get("backend"), line["system"], line["metric"]) == (backend, system, metric):
                return float(line["value"])
        return None

    def ratios(self) -> None:
        """ours / baseline for every baseline measured beside it, per backend."""
        for backend in sorted({str(line.get("backend")) for line in self.lines}):
            ours = self.value(backend, "ours", "shares_per_s")
            if not ours:
                continue
            for line in list(self.lines):
                system = line["system"]
                if line.get("backend") != backend or line["metric"] != "shares_per_s":
                    continue
                if system.startswith("ours") or not line["value"]:
                    continue
                self.emit(backend=backend, system="ours", metric=f"ratio_vs_{system}",
                          value=ours / float(line["value"]), unit="x")  # fmt: skip
