"""Run ``stratum-operator`` as a process with a given identity (a kubeconfig)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness.databases import free_port
from harness.service import ServiceProcess


class OperatorProcess(ServiceProcess):
    name = "operator"

    def __init__(self, workdir: Path, kubeconfig: Path, namespaces: str = "") -> None:
        super().__init__(workdir)  # self.port: the operator's own /metrics
        self.kubeconfig = kubeconfig
        self.namespaces = namespaces
        self.health_port = free_port()

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig),
                "STRATUM_OPERATOR_METRICS_PORT": str(self.port),
                "STRATUM_OPERATOR_HEALTH_PORT": str(self.health_port),
                "STRATUM_OPERATOR_NAMESPACES": self.namespaces,
                "STRATUM_OPERATOR_LOG_FORMAT": "plain"}  # fmt: skip

    def command(self) -> list[str]:
        return [sys.executable, "-m", "stratum_operator.cli"]
