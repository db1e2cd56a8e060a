"""The Go-built test servers and programs (tools/build-go-tools.sh), cached outside the repo."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from harness.databases import ServerUnavailable

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def tools_bin(*tools: str) -> Path:
    """The cache's bin directory, once ``tools`` are built (minutes the first time); the
    build script's up-to-date check runs once per session, not once per call."""
    out = subprocess.run(["bash", str(ROOT / "tools" / "build-go-tools.sh"), *tools],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        raise ServerUnavailable(f"building {' '.join(tools)} failed: {out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def etcd_argv(bin_dir: Path, data_dir: Path, client_port: int, peer_port: int) -> list[str]:
    """A one-member etcd on loopback, fsync off: test state, never anyone's data."""
    return [
        str(bin_dir / "etcd"), "--data-dir", str(data_dir), "--unsafe-no-fsync",
        "--listen-client-urls", f"http://127.0.0.1:{client_port}",
        "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", f"default=http://127.0.0.1:{peer_port}",
    ]  # fmt: skip
