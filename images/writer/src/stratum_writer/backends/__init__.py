"""Database backends, chosen by the connection URL's scheme."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from stratum_writer.backends.base import Backend, ErrorKind, StoreResult
from stratum_writer.redaction import redact

__all__ = ["Backend", "ErrorKind", "StoreResult", "open_backend"]

SCHEMES = {
    "postgres": "postgres",
    "postgresql": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "vitess": "mysql",
    "sqlite": "sqlite",
}


def open_backend(
    url: str, *, pg_strategy: str = "copy", vitess_shards: Sequence[str] | None = None
) -> Backend:
    """The backend for ``url``. Raises ValueError, with the URL redacted, when it is wrong.

    ``vitess_shards`` (the keyspace's shards, e.g. ``["-80", "80-"]``) makes a MySQL
    backend store each batch as one transaction per shard behind vtgate."""
    scheme = urlsplit(url).scheme.lower()
    kind = SCHEMES.get(scheme)
    if kind is None:
        known = ", ".join(sorted(SCHEMES))
        raise ValueError(f"unsupported database URL {redact(url)!r}: scheme must be one of {known}")
    if vitess_shards and kind != "mysql":
        raise ValueError(f"vitess_shards needs a mysql:// URL to vtgate, not {scheme}://")
    try:
        if kind == "postgres":
            from stratum_writer.backends.postgres import PostgresBackend

            if pg_strategy not in ("unnest", "copy"):
                raise ValueError(f"unknown PostgreSQL strategy {pg_strategy!r}")
            return PostgresBackend(url, strategy=pg_strategy)  # type: ignore[arg-type]
        if kind == "mysql":
            from stratum_writer.backends.mysql import MySQLBackend

            return MySQLBackend(url.replace("vitess://", "mysql://", 1), vitess_shards)
        from stratum_writer.backends.sqlite import SqliteBackend

        return SqliteBackend(url)
    except ValueError as exc:
        raise ValueError(f"bad database URL {redact(url)!r}: {exc}") from None
