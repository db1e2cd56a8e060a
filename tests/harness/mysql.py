"""Throw-away MySQL 9.7 servers: Debian unstable's ``mysqld`` run in the root that
``tools/build-mysql-root.sh`` makes (9.7 needs that suite's libraries), chrooted, on a
free loopback port, with its data in a temporary directory inside that root.

The same server serves two parts of the rig: the ``mysql`` backend tested on MySQL as
well as MariaDB, and each Vitess tablet's MySQL (GTIDs and row binlogs on, a server id
of its own). ``mysqld`` runs as root inside its root (``--user=root``), which needs the
tests to run as root, as CI does.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from harness.databases import MySQLFamily, ServerUnavailable, mysql_cli
from harness.go_tools import ROOT


@functools.cache
def mysql_root() -> Path:
    """The MySQL root, made (minutes, once) or found by the provisioning script."""
    if os.geteuid() != 0:
        raise ServerUnavailable(
            "MySQL 9.7 runs chrooted in its Debian root: the tests must run as root"
        )
    out = subprocess.run(["bash", str(ROOT / "tools" / "build-mysql-root.sh")],
                         capture_output=True, text=True, check=False)  # fmt: skip
    if out.returncode != 0:
        raise ServerUnavailable(f"making the MySQL root failed: {out.stderr[-3000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


class MySQLServer(MySQLFamily):
    name = "mysql9"

    def __init__(self, *, server_id: int = 1, buffer_pool: str = "64M") -> None:
        self.root = mysql_root()
        (self.root / "tmp").mkdir(exist_ok=True)
        super().__init__(self.root / "tmp")
        self.inner = "/" + str(self.dir.relative_to(self.root))  # the same place, seen inside
        self.server_id = server_id
        self.buffer_pool = buffer_pool
        self.log = self.dir / "err.log"
        self._run(["chroot", str(self.root), "mysqld", "--no-defaults", "--initialize-insecure",
                   "--user=root", f"--datadir={self.inner}/data"])  # fmt: skip
        self.start()
        try:  # root may log in over TCP from 127.0.0.1, as the writer and vttablet do
            self.sql("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; "
                     "GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")  # fmt: skip
        except Exception:
            self.destroy()
            raise

    def start(self) -> None:
        self._spawn([
            "chroot", str(self.root), "mysqld", "--no-defaults", "--user=root",
            f"--datadir={self.inner}/data", f"--port={self.port}", "--bind-address=127.0.0.1",
            f"--socket={self.inner}/mysqld.sock", "--mysqlx=OFF", "--skip-name-resolve",
            f"--pid-file={self.inner}/mysqld.pid", f"--log-error={self.inner}/err.log",
            f"--server-id={self.server_id}", "--gtid-mode=ON", "--enforce-gtid-consistency=ON",
            "--log-bin=mysql-bin", "--binlog-format=ROW", "--log-replica-updates=ON",
            f"--innodb-buffer-pool-size={self.buffer_pool}", "--performance-schema=OFF",
            "--innodb-redo-log-capacity=64M", "--max-connections=300", "--local-infile=1",
            "--max-allowed-packet=64M", "--innodb-flush-log-at-trx-commit=1",
            f"--secure-file-priv={self.inner}",
        ])  # fmt: skip

    def _wait_ready(self, timeout: float) -> None:
        self._until_serving(lambda: self.sql("SELECT 1"), timeout)

    def client(self, port: int | None = None, user: str = "root") -> list[str]:
        """The root's mysql client, to this server (its socket) or to ``port`` (vtgate)."""
        where = ["-h127.0.0.1", f"-P{port}"] if port else [f"--socket={self.inner}/mysqld.sock"]
        return ["chroot", str(self.root), "mysql", "--no-defaults", f"-u{user}", *where]

    def sql(self, statement: str, database: str = "") -> str:
        return mysql_cli(self.client(), statement, database)

    def login(self, user: str, password: str) -> list[str]:
        return [*self.client(self.port, user), f"-p{password}"]
