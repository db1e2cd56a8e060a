"""`make demo` on a machine without Go: the demo provisions only Python, the project's
packages and SQLite, so a first run takes minutes, not the control plane's build."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_runs_without_go_on_the_path(tmp_path: Path) -> None:
    dirs = os.environ["PATH"].split(os.pathsep)
    no_go = [d for d in dirs if not (Path(d) / "go").exists()]
    env = {**os.environ, "PATH": os.pathsep.join(no_go), "DEMO_MINERS": "40",
           "DEMO_RATE": "400", "DEMO_SECONDS": "3", "DEMO_DATA": str(tmp_path / "demo")}  # fmt: skip
    assert shutil.which("go", path=env["PATH"]) is None
    out = subprocess.run(["make", "demo"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=600, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "every share recorded once, with its verdict" in out.stdout
    assert "build-go-tools" not in out.stdout + out.stderr
