"""`make demo` keeps working: what a new user runs first must reconcile to the share, and
the picture it leaves must open in a real browser with its plots carrying data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from demo import report
from demo.ledgers import Ledgers
from PIL import Image

from harness.chromium import rendered_dom, screenshot

ROOT = Path(__file__).resolve().parents[2]
# every plot's color in the report: a series is drawn when its exact color is on screen
PLOTTED = {"accepted": report.COLORS[None], "stale": report.COLORS[21],
           "duplicate": report.COLORS[22], "low difficulty": report.COLORS[23],
           "queue": report.QUEUE_COLOR, "per-worker hashrate": report.WORKER_COLOR}  # fmt: skip


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    data = tmp_path_factory.mktemp("demo") / "demo"
    env = {**os.environ, "DEMO_MINERS": "60", "DEMO_RATE": "600", "DEMO_SECONDS": "4",
           "DEMO_DATA": str(data)}  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "demo"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    return data, out.stdout


def test_demo_reconciles_pool_miners_and_database(demo_run: tuple[Path, str]) -> None:
    data, stdout = demo_run
    assert "every share recorded once, with its verdict" in stdout
    assert (data / "shares.db").exists()


def _pixels(png: Path) -> dict[str, int]:
    """How many pixels of each plot's color the screenshot has."""
    with Image.open(png) as image:
        counts = dict.fromkeys(PLOTTED.values(), 0)
        for n, color in image.convert("RGB").getcolors(1 << 24) or []:
            assert isinstance(color, tuple)
            hex_color = "#" + "".join(f"{c:02x}" for c in color[:3])
            if hex_color in counts:
                counts[hex_color] += n
    return {name: counts[color] for name, color in PLOTTED.items()}


def test_the_report_opens_in_chromium_with_its_plots_drawn(
    demo_run: tuple[Path, str], tmp_path: Path
) -> None:
    data, stdout = demo_run
    page = data / "report.html"
    assert f"demo: a picture of this run: {page}" in stdout
    html = page.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), (
        "self-contained: fetches nothing"
    )
    dom = rendered_dom(page)
    assert "Every share recorded once" in dom and dom.count("<svg") == 4
    assert re.search(r"<td>accepted</td><td>[\d,]+</td>", dom)
    shot = screenshot(page, tmp_path / "report.png", width=1200, height=3400)
    drawn = _pixels(shot)
    # a line of a few hundred pixels at least, bars of dozens of workers
    assert all(n > 200 for n in drawn.values()), drawn
    # a picture without data draws none of those colors: what the test counts are plots
    nothing = Ledgers(Counter(), Counter(), Counter(), Counter(), 0, 0.0, (0, 0))
    run = report.Run(0, 0.0, 1.0, data / "shares.db")
    empty = report.write(report.Picture(run, nothing, [], {}, []), tmp_path / "empty.html")
    blank = _pixels(screenshot(empty, tmp_path / "empty.png", width=1200, height=3400))
    assert not any(blank.values()), blank
