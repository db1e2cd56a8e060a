"""The proxy's settings: a JSON file (the operator's ConfigMap) plus STRATUM_PROXY_* env.

Validated at start with pydantic; a bad config is one line naming the field and why.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sharelog.settings import ConfigError, load_layered

__all__ = ["ConfigError", "ProxyConfig", "load_config", "split_address"]


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("stratum+tcp", "stratum+ssl", "tcp", "ssl") or not parts.hostname:
        raise ValueError(f"{url!r} is not stratum+tcp://host:port or stratum+ssl://host:port")
    if parts.port is None:
        raise ValueError(f"{url!r} has no port")
    return url


class ProxyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: str = Field("local", min_length=1, max_length=63)
    listen: str = "0.0.0.0:3333"
    metrics_listen: str = "0.0.0.0:9101"
    # name -> host:port of a sidecar's /metrics, served with ours at /metrics/pod
    sidecar_metrics: dict[str, str] = {}
    upstreams: list[str] = Field(min_length=1)
    routes: dict[str, list[str]] = {}  # CONNECT <name> -> upstreams, Loka-Stratum style
    upstream_account: str | None = None
    # between a miner's account and rig in the upstream worker: <account>.<user><sep><rig>
    upstream_worker_separator: str = Field("_", min_length=1, max_length=8, pattern=r"^[!-\-/-~]+$")
    upstream_password: str = "x"  # noqa: S105 - Stratum pools ignore it; "x" is the convention
    upstream_insecure_tls: bool = False  # stratum+ssl without verifying the pool (not advised)
    upstream_ca_file: Path | None = None  # trust this CA bundle for stratum+ssl upstreams
    local_reject: bool = True
    submit_timeout_s: float = Field(30.0, gt=0, le=600)
    handshake_timeout_s: float = Field(30.0, gt=0)
    idle_timeout_s: float = Field(600.0, gt=0)
    max_line_bytes: int = Field(16384, ge=512, le=1 << 20)
    max_connections: int = Field(100_000, ge=1)
    max_connections_per_ip: int = Field(1000, ge=1)
    # new connections a second from one address, checked before any TLS handshake
    max_new_connections_per_ip_per_s: float = Field(20.0, gt=0)
    max_protocol_errors: int = Field(50, ge=1)
    max_submits_per_s: float = Field(100.0, gt=0)  # per connection, averaged over the window
    submit_rate_window_s: float = Field(10.0, gt=0, le=3600)
    spool_dir: Path = Path("/var/spool/stratum")
    spool_max_bytes: int = Field(1 << 30, ge=1 << 20)
    spool_fsync_interval_s: float | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    proxy_instance: str = Field(
        default_factory=lambda: os.environ.get("POD_NAME", socket.gethostname())
    )
    shutdown_grace_s: float = Field(20.0, ge=0)
    log_level: str = "INFO"

    @field_validator("upstreams")
    @classmethod
    def _upstreams(cls, value: list[str]) -> list[str]:
        return [_check_url(u) for u in value]

    @field_validator("sidecar_metrics")
    @classmethod
    def _sidecars(cls, value: dict[str, str]) -> dict[str, str]:
        for name, address in value.items():
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"sidecar {name!r}: {address!r} is not HOST:PORT")
        return value

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, urls in value.items():
            if not urls:
                raise ValueError(f"route {name!r} has no upstreams")
            for url in urls:
                _check_url(url)
        return value


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    try:
        return host or "0.0.0.0", int(port)  # noqa: S104
    except ValueError:
        raise ConfigError(f"address must be HOST:PORT, got {address!r}") from None


def load_config(path: Path | None, overrides: dict[str, Any]) -> ProxyConfig:
    env = {key: f"STRATUM_PROXY_{key.upper()}" for key in ProxyConfig.model_fields}
    json_keys = ("upstreams", "routes", "sidecar_metrics")
    return load_layered(ProxyConfig, path, env, overrides, json_keys=json_keys,
                        what="proxy config")  # fmt: skip
