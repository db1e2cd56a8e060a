"""Debian's Chromium, headless, opening a page the way a person's browser would.

Started with what this machine's closed network needs (no background connections, no
component updates, a fresh profile each time) and ``--no-sandbox`` when run as root.
A machine without it fails the test with the reason: ``make test`` provisions it
(``tools/provision.sh``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.databases import ServerUnavailable

_FLAGS = ["--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--hide-scrollbars"]  # fmt: skip


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:
        raise ServerUnavailable("chromium is not installed: run tools/provision.sh (as root)")
    with tempfile.TemporaryDirectory(prefix="stratum-chromium-") as profile:
        argv = [binary, *_FLAGS, f"--user-data-dir={profile}", *args]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def screenshot(page: Path, out: Path, *, width: int, height: int) -> Path:
    """The page as rendered, ``width`` x ``height`` pixels, into the PNG ``out``."""
    done = _run(f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri())
    if not out.exists():
        raise AssertionError(f"chromium took no screenshot: {done.stderr[-2000:]}")
    return out


def rendered_dom(page: Path) -> str:
    """The page's DOM after Chromium parsed and laid it out."""
    done = _run("--dump-dom", page.as_uri())
    if done.returncode != 0 or "<html" not in done.stdout:
        raise AssertionError(f"chromium rendered nothing: {done.stderr[-2000:]}")
    return done.stdout
