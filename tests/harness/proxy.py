"""Run ``stratum-proxy`` as the real process it is in a pod, from a JSON config file."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from harness.databases import free_port
from harness.service import ServiceProcess


class ProxyProcess(ServiceProcess):
    name = "proxy"

    def __init__(
        self, workdir: Path, upstreams: list[str], *, listen_port: int | None = None,
        host: str = "127.0.0.1", metrics_port: int | None = None, **settings: Any,
    ) -> None:  # fmt: skip
        super().__init__(workdir, host, metrics_port)  # host: a "pod IP", as for the writer
        self.listen_port = listen_port or free_port()
        self.spool = workdir / "spool"
        self.config: dict[str, Any] = {
            "pool": "test-pool",
            "listen": f"127.0.0.1:{self.listen_port}",
            "metrics_listen": f"{self.host}:{self.port}",
            "upstreams": upstreams,
            "spool_dir": str(self.spool),
            "proxy_instance": "proxy-0",
            "shutdown_grace_s": 2,
            # every test miner dials from 127.0.0.1, one address for whole fleets: the
            # per-address rate (20/s by default) is a test's own subject where it sets it
            "max_new_connections_per_ip_per_s": 1e6,
            **settings,
        }
        self.config_file = workdir / f"proxy-{self.port}.json"

    def start(self) -> ProxyProcess:
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(self.config))
        self.spawn([sys.executable, "-m", "stratum_proxy.cli", "--config", str(self.config_file)])
        return self
