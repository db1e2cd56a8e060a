"""The writer's settings: a JSON file (the operator's ConfigMap), then environment, then flags.

The database URL is never a setting: it is read from a file (a mounted Secret) or from
``STRATUM_DATABASE_URL``, so it stays out of ConfigMaps, process listings and logs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sharelog.settings import ConfigError, load_layered
from sharelog.spool.format import DEAD_LETTERS
from stratum_writer.backends.vitess_shards import ShardMap

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DEAD_LETTER_MAX_BYTES",
    "ConfigError",
    "WriterConfig",
    "database_url",
    "load_config",
]

# Shares per batch at most. A backlog drains in batches this size; a pool below the
# writer's capacity fills them only to batch_timeout_ms. 10,000 rather than 5,000: each
# batch upserts one rollup and one registry row per worker it touches, and commits once,
# so bigger batches cost the database less per share (bench-writer: PostgreSQL +35%,
# MariaDB +12% over 5,000) for about 65 MiB more at a full backlog (docs/writer.md).
DEFAULT_BATCH_SIZE = 10_000
# The dead-letter file's cap. It lies on the spool's volume and counts against the
# proxy's size limit, so it must stay a small part of it: 64 MiB is about 100,000 refused
# shares (a JSON line each), a twentieth of the operator's default limit (nine tenths of
# a 1 GiB claim). At the cap the writer holds the next refused share in the spool.
DEFAULT_DEAD_LETTER_MAX_BYTES = 64 << 20


class WriterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spool_dir: Path = Path("/var/spool/stratum")
    database_url_file: Path | None = None
    dead_letter_file: Path | None = None  # default: <spool_dir>/dead-letters.jsonl
    dead_letter_max_bytes: int = Field(DEFAULT_DEAD_LETTER_MAX_BYTES, ge=4096)
    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, le=100_000)
    batch_timeout_ms: int = Field(200, ge=1, le=60_000)
    workers: int = Field(1, ge=1, le=64)
    max_workers: int = Field(16, ge=1, le=64)
    workers_file: Path | None = None
    listen: str = "0.0.0.0:9100"
    drain_timeout_s: float = Field(25.0, ge=0)
    max_attempts: int = Field(5, ge=1, le=100)
    pg_strategy: Literal["unnest", "copy"] = "copy"  # faster: bench-writer
    # A Vitess keyspace's shards ("-80", "80-"): batches are stored one transaction per shard.
    vitess_shards: list[str] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Retention (``retain``): whole UTC days of shares and of rollups kept. None keeps
    # everything. The operator's CronJob passes them; a SQLite writer retains hourly.
    retention_share_days: int | None = Field(None, ge=1)
    retention_rollup_days: int | None = Field(None, ge=1)

    @field_validator("vitess_shards")
    @classmethod
    def _shards_cover_the_keyspace(cls, shards: list[str] | None) -> list[str] | None:
        if shards:
            ShardMap(shards)  # raises ValueError naming the gap or the bad range
        return shards

    @property
    def dead_letters(self) -> Path:
        return self.dead_letter_file or self.spool_dir / DEAD_LETTERS

    def listen_address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        try:
            return host or "0.0.0.0", int(port)  # noqa: S104
        except ValueError:
            raise ConfigError(f"listen must be HOST:PORT, got {self.listen!r}") from None


_ENV = {
    "spool_dir": "STRATUM_SPOOL_DIR",
    "database_url_file": "STRATUM_DATABASE_URL_FILE",
    "dead_letter_file": "STRATUM_DEAD_LETTER_FILE",
    "dead_letter_max_bytes": "STRATUM_DEAD_LETTER_MAX_BYTES",
    "batch_size": "STRATUM_BATCH_SIZE",
    "batch_timeout_ms": "STRATUM_BATCH_TIMEOUT_MS",
    "workers": "STRATUM_WRITER_WORKERS",
    "workers_file": "STRATUM_WRITER_WORKERS_FILE",
    "listen": "STRATUM_WRITER_LISTEN",
    "pg_strategy": "STRATUM_PG_STRATEGY",
    "log_level": "STRATUM_LOG_LEVEL",
}


def load_config(path: Path | None, overrides: dict[str, Any]) -> WriterConfig:
    return load_layered(WriterConfig, path, _ENV, overrides, what="writer config")


def database_url(config: WriterConfig) -> str:
    """The connection URL from the Secret file or the environment; ConfigError if neither."""
    if config.database_url_file is not None:
        try:
            url = config.database_url_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the database URL file {config.database_url_file}: {exc.strerror}"
            ) from None
        if not url:
            raise ConfigError(f"the database URL file {config.database_url_file} is empty")
        return url
    url = os.environ.get("STRATUM_DATABASE_URL", "").strip()
    if not url:
        raise ConfigError(
            "no database URL: set STRATUM_DATABASE_URL or --database-url-file "
            "(in Kubernetes, a mounted Secret)"
        )
    return url
