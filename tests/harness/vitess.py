"""Vitess's control plane for tests: etcd as the topology server and a real vtctld, with
one cell as a real cluster has, and ``vitess-check`` (Vitess's own parser, VSchema
builder, planner and vindexes, tools/vitess-check) for what needs no server at all.

No tablets: what only touches the topology (CreateKeyspace, ApplyVSchema, GetVSchema)
runs here in seconds, and ApplySchema reaches vtctld and is refused for want of a
primary tablet. The whole cluster, tablets on MySQL 9.7 and vtgate, is
harness/vitess_cluster.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from typing import Any

from harness.databases import ServerUnavailable, free_port
from harness.go_tools import etcd_argv, tools_bin
from harness.process_group import ProcessGroup

CELL = "zone1"
_NOBODY = 65534  # vtctld refuses to run as root


def vitess_check(*args: str, stdin: Any = None) -> Any:
    """Run tools/vitess-check; its answer is JSON."""
    binary = tools_bin("vitess") / "vitess-check"
    out = subprocess.run([str(binary), *args], capture_output=True, text=True, check=False,
                         input=None if stdin is None else json.dumps(stdin))  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"vitess-check {args[0]} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


class Vtctld(ProcessGroup):
    def __init__(self) -> None:
        super().__init__("stratum-vitess-")
        self.bin = tools_bin("etcd", "vitess")
        self.grpc_port = free_port()
        self.address = f"127.0.0.1:{self.grpc_port}"
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _as_nobody() -> None:
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(_NOBODY)
            os.setuid(_NOBODY)

    def _start(self) -> None:
        etcd_port = free_port()
        self._spawn("etcd", etcd_argv(self.bin, self.dir / "etcd", etcd_port, free_port()))
        topo = f"127.0.0.1:{etcd_port}"
        # run as nobody, who can't read root's cache: a copy in our own (0755) directory
        self.dir.chmod(0o755)
        vtctld = shutil.copy(self.bin / "vtctld", self.dir / "vtctld")
        self._spawn("vtctld", [
            str(vtctld), "--topo-implementation", "etcd2",
            "--topo-global-server-address", topo, "--topo-global-root", "/vitess/global",
            "--service-map", "grpc-vtctl,grpc-vtctld", "--bind-address", "127.0.0.1",
            "--port", str(free_port()), "--grpc-port", str(self.grpc_port),
        ], self._as_nobody)  # fmt: skip
        self._wait_port(self.grpc_port, 60)
        deadline = time.monotonic() + 60
        while True:  # etcd may still be electing itself leader
            out = self.client("AddCellInfo", "--root", f"/vitess/{CELL}",
                              "--server-address", topo, CELL)  # fmt: skip
            if out.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"vtctld AddCellInfo failed: {out.stderr[-1500:]}")
            time.sleep(0.5)

    def _wait_port(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise ServerUnavailable(f"a Vitess test process exited: {self.logs()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.2)
        raise ServerUnavailable(f"vtctld did not listen on {port} in {timeout}s")

    def client(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """vtctldclient against this vtctld, bounded: it would otherwise retry forever."""
        return subprocess.run(
            [str(self.bin / "vtctldclient"), "--server", self.address,
             "--action-timeout=30s", *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
