"""`make demo` keeps working: what a new user runs first must reconcile to the share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.databases import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_stores_every_share_once(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_SHARES": "20000", "DEMO_RATE": "20000",
           "DEMO_DATA": str(tmp_path / "demo"), "DEMO_METRICS_PORT": str(free_port())}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every share stored exactly once" in out.stdout
    assert "produced 20,000, stored 20,000 (20,000 distinct), rolled up 20,000" in out.stdout
