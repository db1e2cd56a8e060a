"""Database users holding exactly a list of grants (the writer's, retention's, a
dashboard's), made by the server's root and then logged in as, so a test sees what that
user may and may not do."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from harness.databases import Database, MySQLFamily, PostgresServer, mysql_cli

PASSWORD = "pw"  # MySQL and MariaDB; PostgreSQL's test servers trust loopback


def user_with(db: Database, prefix: str, grants: tuple[str, ...]) -> Database:
    """A user named ``<prefix>_<database>`` holding ``grants`` (``{user}``, ``{database}``
    filled in) on ``db``: its URL, and its own session for queries."""
    parts = urlsplit(db.url)
    name = parts.path.lstrip("/")
    user = f"{prefix}_{name}"
    if db.kind == "postgres":
        db.query(f"CREATE ROLE {user} LOGIN")
        for grant in grants:
            db.query(grant.format(user=user, database=f'"{name}"'))
    else:
        db.query(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'")
        for grant in grants:
            db.query(grant.format(user=f"'{user}'@'%'", database=f"`{name}`"))
    secret = "" if db.kind == "postgres" else f":{PASSWORD}"
    url = urlunsplit(parts._replace(netloc=f"{user}{secret}@{parts.hostname}:{parts.port}"))
    return Database(db.kind, url, _session(db, user, name), db.server)


def _session(db: Database, user: str, database: str) -> Callable[[str], str]:
    server = db.server
    if isinstance(server, PostgresServer):
        return lambda sql: server.psql(sql, database, user)
    if isinstance(server, MySQLFamily):
        client = server.login(user, PASSWORD)
        return lambda sql: mysql_cli(client, sql, database)
    raise TypeError(f"no server to log in to for {db.kind}")
