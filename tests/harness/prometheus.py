"""A real Prometheus (built from the Go module proxy, tools/build-go-tools.sh) scraping
every second, on a free loopback port, torn down after: given targets (``static``), or
what its own scrape configs discover."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from typing import Any

import yaml

from harness.databases import ServerUnavailable, free_port
from harness.go_tools import tools_bin
from harness.process_group import ProcessGroup


def static(targets: list[tuple[str, dict[str, str]]]) -> list[dict[str, Any]]:
    """One scrape job of ``targets``: (host:port, the labels that target's series get)."""
    return [{"job_name": "stratum", "static_configs": [
        {"targets": [address], "labels": labels} for address, labels in targets]}]  # fmt: skip


class PrometheusServer(ProcessGroup):
    def __init__(self, scrape_configs: list[dict[str, Any]], rule_files: list[str]) -> None:
        super().__init__("stratum-prometheus-")
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": rule_files,
            "scrape_configs": scrape_configs,
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        binary = tools_bin("prometheus") / "prometheus"
        self._spawn("prometheus", [str(binary), f"--config.file={self.dir / 'prometheus.yml'}",
                                   f"--storage.tsdb.path={self.dir / 'data'}",
                                   f"--web.listen-address=127.0.0.1:{self.port}"])  # fmt: skip
        deadline = time.monotonic() + 60
        while not self._ready():
            if time.monotonic() > deadline:
                self.stop()
                raise ServerUnavailable(f"prometheus did not start: {self.logs()}")
            time.sleep(0.3)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """An HTTP API call's ``data``; its error, when Prometheus refused, as RuntimeError."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.api("query", query=expr)["result"]
        return result
