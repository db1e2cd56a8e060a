"""Throw-away PostgreSQL and MariaDB servers for tests and benchmarks.

Each server lives in a temporary directory, listens on a free loopback port, and runs
from Debian's server binaries (``make provision`` installs them). No system service is
used. A server can be killed with SIGKILL and started again on the same data and port,
which is how the outage tests take the database away from a running writer.

A PostgreSQL server can also serve a real node's pods (``PodAccess``): it listens on the
node's bridge gateway too and admits the pod range there.

Both servers refuse to run as root; when the tests run as root (CI does), the servers
run as the packages' own ``postgres`` / ``mysql`` accounts.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.certificates import self_signed


class ServerUnavailable(RuntimeError):
    """The server binaries are missing or the server did not come up; says which."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(
                f"server exited with {proc.returncode}: {log.read_text()[-2000:]}"
            )
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise ServerUnavailable(
        f"server did not listen on {port} in {timeout}s: {log.read_text()[-2000:]}"
    )


_running: set[_Server] = set()


@atexit.register
def _stop_leftovers() -> None:
    """Servers run in their own session; don't leave them behind when a run is cut short."""
    for server in list(_running):
        server.kill()


class _Server:
    account = ""  # the account it runs as when the tests run as root; "": as root
    name = ""

    def __init__(self, base: Path | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"stratum-{self.account or self.name}-", dir=base))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "server.log"
        self._uid: int | None = None
        if os.geteuid() == 0 and self.account:
            try:
                entry = pwd.getpwnam(self.account)
            except KeyError:
                raise ServerUnavailable(
                    f"running as root needs the '{self.account}' account; run 'make provision'"
                ) from None
            self._uid, self._gid = entry.pw_uid, entry.pw_gid
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            os.chmod(self.dir, 0o755)

    def _demote(self) -> None:
        if self._uid is not None:
            os.setgid(self._gid)
            os.setuid(self._uid)

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(argv, capture_output=True, preexec_fn=self._demote, check=False)
        if result.returncode != 0:
            raise ServerUnavailable(
                f"{argv[0]} failed ({result.returncode}): {result.stderr.decode()[-2000:]}"
            )

    def _spawn(self, argv: list[str]) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=self._demote,
                start_new_session=True,
            )
        _running.add(self)
        try:
            _wait_port(self.port, self.proc, self.log, 60)
            self._wait_ready(60)
        except ServerUnavailable:
            self.kill()
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Past the open port: a server recovering from a crash listens before it serves."""

    def _until_serving(self, probe: Callable[[], object], timeout: float) -> None:
        """Run ``probe`` (a trivial query) until it stops raising RuntimeError."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                probe()
                return
            except RuntimeError as exc:
                if time.monotonic() > deadline:
                    raise ServerUnavailable(
                        f"{type(self).__name__} listens but never served: {exc}"
                    ) from None
                time.sleep(0.05)

    def start(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """SIGKILL to every server process at once, as when its node or container dies."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # wait for the group's last process to go
                try:
                    os.killpg(self.proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def destroy(self) -> None:
        self.stop()
        _running.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass(frozen=True)
class PodAccess:
    """Where a real node's pods reach a server on the host (the bridge's gateway) and the
    addresses they come from (the pod range, in CIDR form)."""

    address: str
    clients: str


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise ServerUnavailable(f"PostgreSQL's {name} is not installed; run 'make provision'")
    return found[-1]


class PostgresServer(_Server):
    account = "postgres"

    def __init__(self, *, fsync: bool = False, pods: PodAccess | None = None) -> None:
        super().__init__()
        self.fsync = fsync
        self.pods = pods
        self.data = self.dir / "data"
        self._run([_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-instructions"])  # fmt: skip
        if pods is not None:
            with (self.data / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {pods.clients} trust\n")
        self.start()

    def start(self) -> None:
        listen = ",".join(["127.0.0.1", *([self.pods.address] if self.pods else [])])
        self._spawn([
            _pg_bin("postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", f"listen_addresses={listen}", "-c", f"unix_socket_directories={self.dir}",
            "-c", f"fsync={'on' if self.fsync else 'off'}", "-c", "max_connections=200",
            "-c", "shared_buffers=256MB", "-c", "max_wal_size=4GB",
        ])  # fmt: skip

    def _wait_ready(self, timeout: float) -> None:
        self._until_serving(lambda: self.psql("SELECT 1"), timeout)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url_for_pods(self, database: str) -> str:
        """The database's URL as a node's pods reach it (``pods`` given)."""
        if self.pods is None:
            raise ValueError("this server was started without PodAccess")
        return f"postgresql://postgres@{self.pods.address}:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres", user: str = "postgres") -> str:
        out = subprocess.run(
            [_pg_bin("psql"), "-X", "-qAt", "-h", "127.0.0.1", "-p", str(self.port), "-U",
             user, "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, check=False,
        )  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stderr.decode())
        return out.stdout.decode().strip()

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)


def mysql_cli(client: list[str], statement: str, database: str = "") -> str:
    """One statement through a mysql/mariadb command-line client: its rows, tab-separated."""
    argv = [*client, "-N", "-B", "-e", statement, *([database] if database else [])]
    out = subprocess.run(argv, capture_output=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.decode())
    return out.stdout.decode().strip()


class MySQLFamily(_Server):
    """What MariaDB and MySQL servers share: their URL and how a database is made."""

    def url(self, database: str = "") -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "") -> str:
        raise NotImplementedError

    def login(self, user: str, password: str) -> list[str]:
        """A mysql client logged in as ``user`` over TCP, as an application connects."""
        raise NotImplementedError

    def create_database(self, name: str) -> str:
        self.sql(f"CREATE DATABASE `{name}`")
        return self.url(name)


class MariaDBServer(MySQLFamily):
    account = "mysql"

    def __init__(self) -> None:
        super().__init__()
        self.data = self.dir / "data"
        self.socket = self.dir / "mysqld.sock"
        install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if install is None or not self._mariadbd():
            raise ServerUnavailable("MariaDB server is not installed; run 'make provision'")
        argv = [install, "--no-defaults", f"--datadir={self.data}", "--auth-root-authentication-method=normal",
                "--skip-test-db", "--innodb-log-file-size=256M"]  # fmt: skip
        if self._uid is not None:
            argv.append(f"--user={self.account}")
        self._run(argv)
        # TLS on offer (never forced), so ssl-mode=REQUIRED/VERIFY_CA URLs can be tested
        self.tls_cert, tls_key = self_signed(self.dir)
        if self._uid is not None:
            os.chown(tls_key, self._uid, self._gid)
        self.start()
        try:
            self.sql(
                "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; "
                "GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION"
            )
        except Exception:
            self.destroy()
            raise

    @staticmethod
    def _mariadbd() -> str:
        return shutil.which("mariadbd") or (
            "/usr/sbin/mariadbd" if os.path.exists("/usr/sbin/mariadbd") else ""
        )

    def start(self) -> None:
        self._spawn([
            self._mariadbd(), "--no-defaults", f"--datadir={self.data}", f"--port={self.port}",
            "--bind-address=127.0.0.1", f"--socket={self.socket}", "--skip-name-resolve",
            f"--pid-file={self.dir / 'mysqld.pid'}", "--innodb-buffer-pool-size=512M",
            "--innodb-log-file-size=256M", "--innodb-flush-log-at-trx-commit=1",
            "--max-connections=200", "--local-infile=1", "--max-allowed-packet=64M",
            f"--ssl-cert={self.tls_cert}", f"--ssl-key={self.dir / 'tls.key'}",
        ])  # fmt: skip

    def sql(self, statement: str, database: str = "") -> str:
        return mysql_cli([self._client(), "--no-defaults", "-uroot", f"--socket={self.socket}"],
                         statement, database)  # fmt: skip

    def login(self, user: str, password: str) -> list[str]:
        return [self._client(), "--no-defaults", f"-u{user}", f"-p{password}", "-h127.0.0.1",
                f"-P{self.port}"]  # fmt: skip

    @staticmethod
    def _client() -> str:
        return shutil.which("mariadb") or shutil.which("mysql") or "mariadb"


@dataclass
class Database:
    """One empty database on a real server, and a way to ask it questions."""

    kind: str
    url: str
    query: Callable[[str], str]
    server: _Server | None = None

    def scalar(self, sql: str) -> int:
        return int(float(self.query(sql) or 0))


def sqlite_query(path: Path) -> Callable[[str], str]:
    """A SQLite file's query function for ``Database``: rows tab-separated, as the
    servers' clients print them."""

    def query(sql: str) -> str:
        with sqlite3.connect(path) as conn:
            rows = conn.execute(sql).fetchall()
        return "\n".join("\t".join("" if v is None else str(v) for v in r) for r in rows)

    return query


def db_verdicts(db: Database, where: str = "TRUE") -> Counter[int | None]:
    """The stored shares by verdict (Stratum error code; None: accepted), as the miners'
    answers are counted (``harness.sim.answers``)."""
    rows = db.query(
        f"SELECT coalesce(error_code, 0), count(*) FROM share_events WHERE {where} GROUP BY 1"
    )
    out: Counter[int | None] = Counter()
    for line in rows.splitlines():
        code, n = re.split(r"[|\t]", line)  # psql -A says |, mariadb -B a tab
        out[None if code == "0" else int(code)] = int(n)
    return out
