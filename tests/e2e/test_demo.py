"""`make demo` keeps working: what a new user runs first must reconcile to the share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_reconciles_pool_miners_and_database(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_MINERS": "60", "DEMO_RATE": "600", "DEMO_SECONDS": "4",
           "DEMO_DATA": str(tmp_path / "demo")}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every share recorded once, with its verdict" in out.stdout
    assert (tmp_path / "demo" / "shares.db").exists()
