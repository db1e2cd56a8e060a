"""A real Vitess cluster for tests: etcd topology, vtctld, one PRIMARY tablet per shard of
a keyspace, each on its own MySQL 9.7, and vtgate speaking the MySQL protocol, all on
free loopback ports, torn down after.

Built from Vitess's own code (``vttablet``, ``vtgate``, ``vtctld``, ``vtctldclient``
v0.24.4, tools/build-go-tools.sh) and Debian unstable's MySQL 9.7 (harness/mysql.py).
The tablets are unmanaged (``--db-host``/``--db-port`` to their MySQL), made PRIMARY by
``TabletExternallyReparented``, as ../shared/notes/vitess-rig-recipe.md found. The
keyspace is created here (its tablets register into it); schema and VSchema are left to
the test, which applies them with the keyspace Job's own commands.

Vitess's servers refuse to run as root: they run as nobody, from copies of the binaries
in this cluster's own directory. A test may kill and restart any MySQL, tablet or
vtgate (``kill``/``start`` by name) to see the writer through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.databases import ServerUnavailable, free_port, mysql_cli
from harness.go_tools import etcd_argv, tools_bin
from harness.job_pod import Step, run_job_pod
from harness.mysql import MySQLServer
from harness.process_group import ProcessGroup
from harness.writer import WriterProcess
from stratum_operator.builders import desired_objects
from stratum_operator.images import release_image
from stratum_operator.spec import parse_spec
from stratum_writer.aggregates import AGGREGATES
from stratum_writer.backends.day_partitions import by_day_ddl

CELL = "zone1"
APP_PASSWORD = "vt-app-password"  # vttablet refuses an empty one
_NOBODY = 65534
_USERS = """SET sql_log_bin = 0;
CREATE USER IF NOT EXISTS 'vt_dba'@'%'; GRANT ALL ON *.* TO 'vt_dba'@'%' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'vt_app'@'%' IDENTIFIED BY '{password}'; GRANT ALL ON *.* TO 'vt_app'@'%';
CREATE USER IF NOT EXISTS 'vt_appdebug'@'%';
GRANT SELECT, SHOW DATABASES, PROCESS ON *.* TO 'vt_appdebug'@'%';
CREATE USER IF NOT EXISTS 'vt_allprivs'@'%'; GRANT ALL ON *.* TO 'vt_allprivs'@'%';
CREATE USER IF NOT EXISTS 'vt_repl'@'%'; GRANT REPLICATION SLAVE ON *.* TO 'vt_repl'@'%';
CREATE USER IF NOT EXISTS 'vt_filtered'@'%'; GRANT ALL ON *.* TO 'vt_filtered'@'%';
CREATE DATABASE IF NOT EXISTS `vt_{keyspace}`;"""


def _as_nobody() -> None:
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(_NOBODY)
        os.setuid(_NOBODY)


class VitessCluster(ProcessGroup):
    def __init__(self, keyspace: str = "shares", shards: tuple[str, ...] = ("-80", "80-"),
                 *, transaction_mode: str = "MULTI",
                 vtgate_flags: tuple[str, ...] = ()) -> None:  # fmt: skip
        super().__init__("stratum-vtcluster-")
        self.keyspace, self.shards, self.transaction_mode = keyspace, shards, transaction_mode
        self.vtgate_flags = vtgate_flags
        self.mysql: dict[str, MySQLServer] = {}
        self.named: dict[str, subprocess.Popen[bytes]] = {}
        self.argv: dict[str, list[str]] = {}
        self.tablet_ports: dict[str, tuple[int, int]] = {}
        self.vtgate_port, self.vtgate_http = free_port(), free_port()
        self.keyspace_steps: dict[str, Step] = {}  # the keyspace Job's, once it ran
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    # -- bring-up ---------------------------------------------------------------------

    def _start(self) -> None:
        src = tools_bin("etcd", "vitess")
        self.dir.chmod(0o755)
        self.bin = self.dir / "bin"
        self.bin.mkdir()
        for tool in ("vtctld", "vtctldclient", "vttablet", "vtgate"):
            shutil.copy(src / tool, self.bin / tool)
        self.dir_for("logs")
        for shard in self.shards:
            self._add_mysql(shard)
        etcd_port = free_port()
        self._run_named(
            "etcd", etcd_argv(src, self.dir / "etcd", etcd_port, free_port()), root=True
        )
        self.topo = ["--topo-implementation", "etcd2", "--topo-global-server-address",
                     f"127.0.0.1:{etcd_port}", "--topo-global-root", "/vitess/global"]  # fmt: skip
        self._until("the cell registered", lambda: subprocess.run(
            [str(self.bin / "vtctldclient"), "--server", "internal", *self.topo, "AddCellInfo",
             "--root", f"/vitess/{CELL}", "--server-address", f"127.0.0.1:{etcd_port}", CELL],
            capture_output=True, preexec_fn=_as_nobody, check=False).returncode == 0, 60)  # fmt: skip
        self.vtctld_grpc = free_port()
        self.vtctld = f"127.0.0.1:{self.vtctld_grpc}"
        self._run_named("vtctld", [
            str(self.bin / "vtctld"), *self.topo, "--cell", CELL,
            "--service-map", "grpc-vtctl,grpc-vtctld", "--bind-address", "127.0.0.1",
            "--grpc-bind-address", "127.0.0.1", "--port", str(free_port()),
            "--grpc-port", str(self.vtctld_grpc), "--log_dir", str(self.dir / "logs"),
        ])  # fmt: skip
        self._wait_port(self.vtctld_grpc, "vtctld")
        self.ctl("CreateKeyspace", "--force", self.keyspace)
        for shard in self.shards:
            self.tablet_ports[shard] = (free_port(), free_port())
            self.start(f"vttablet{shard}")
        for shard in self.shards:
            self.make_primary(shard)
        self.start("vtgate")

    def add_shards(self, *shards: str) -> None:
        """New shards' PRIMARY tablets, each on its own MySQL: the targets of a Reshard
        (step 1 of vitess/README.md's resharding). vtgate sees them through the topology."""
        for shard in shards:
            self._add_mysql(shard)
            self.shards = (*self.shards, shard)
            self.tablet_ports[shard] = (free_port(), free_port())
            self.start(f"vttablet{shard}")
        for shard in shards:
            self.make_primary(shard)
        # a new primary's VReplication engine opens a moment after it is made primary,
        # and a Reshard created before then fails half-way ("vreplication engine is
        # closed"): wait until every primary of the keyspace answers for its workflows
        self._until("the new primaries' VReplication engines", lambda: self.ctl(
            "GetWorkflows", self.keyspace, check=False).returncode == 0, 60)  # fmt: skip

    def _add_mysql(self, shard: str) -> None:
        server = MySQLServer(server_id=101 + len(self.mysql))
        self.mysql[shard] = server
        server.sql(_USERS.format(password=APP_PASSWORD, keyspace=self.keyspace))

    def dir_for(self, name: str) -> str:
        path = self.dir / name
        path.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, _NOBODY, _NOBODY)
        return str(path)

    def tablet_alias(self, shard: str) -> str:
        return f"{CELL}-{101 + self.shards.index(shard):010d}"

    def _tablet_argv(self, shard: str, uid: int) -> list[str]:
        port, grpc = self.tablet_ports[shard]
        mysql = self.mysql[shard]
        return [
            str(self.bin / "vttablet"), *self.topo, "--tablet-path", f"{CELL}-{uid:010d}",
            "--tablet-hostname", "127.0.0.1", "--init-keyspace", self.keyspace,
            "--init-shard", shard, "--init-tablet-type", "replica",
            "--port", str(port), "--grpc-port", str(grpc), "--bind-address", "127.0.0.1",
            "--grpc-bind-address", "127.0.0.1",
            "--service-map", "grpc-queryservice,grpc-tabletmanager,grpc-updatestream",
            "--unmanaged", "--db-host", "127.0.0.1", "--db-port", str(mysql.port),
            "--db-app-user", "vt_app", "--db-app-password", APP_PASSWORD,
            "--db-dba-user", "vt_dba", "--db-allprivs-user", "vt_allprivs",
            "--db-repl-user", "vt_repl", "--db-filtered-user", "vt_filtered",
            "--db-appdebug-user", "vt_appdebug", "--db-charset", "utf8mb4",
            "--log_dir", self.dir_for(f"tablet{uid}"),
        ]  # fmt: skip

    def _vtgate_argv(self) -> list[str]:
        return [
            str(self.bin / "vtgate"), *self.topo, "--cell", CELL, "--cells-to-watch", CELL,
            "--tablet-types-to-wait", "PRIMARY", "--port", str(self.vtgate_http),
            "--tablet-refresh-interval", "5s",  # finds a Reshard's new tablets (1m default)
            "--grpc-port", str(free_port()), "--bind-address", "127.0.0.1",
            "--grpc-bind-address", "127.0.0.1", "--mysql-server-port", str(self.vtgate_port),
            "--mysql-server-bind-address", "127.0.0.1", "--mysql-auth-server-impl", "none",
            "--service-map", "grpc-vtgateservice", "--transaction-mode", self.transaction_mode,
            "--log_dir", self.dir_for("vtgate"), *self.vtgate_flags,
        ]  # fmt: skip

    # -- each part, by name: "mysql-80", "vttablet-80", "vtgate" ------------------------

    def start(self, name: str) -> None:
        if name.startswith("mysql"):
            self.mysql[name[len("mysql") :]].start()
            return
        if name.startswith("vttablet"):
            shard = name[len("vttablet") :]
            argv = self._tablet_argv(shard, 101 + self.shards.index(shard))
            self._run_named(name, argv)
            self._wait_port(self.tablet_ports[shard][1], name)
            return
        assert name == "vtgate", name
        self._run_named("vtgate", self._vtgate_argv())
        self._wait_port(self.vtgate_port, "vtgate")
        self._until("vtgate serving every shard's primary", self.gate_serves, 60)

    def kill(self, name: str) -> None:
        """SIGKILL, as when its container or node dies."""
        if name.startswith("mysql"):
            self.mysql[name[len("mysql") :]].kill()
            return
        proc = self.named.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def set_transaction_mode(self, mode: str) -> None:
        """vtgate's ``--transaction-mode`` (SINGLE, MULTI): vtgate restarted with it."""
        if mode != self.transaction_mode:
            self.transaction_mode = mode
            self.kill("vtgate")
            self.start("vtgate")

    def clear(self) -> None:
        """Empty the share tables on every shard, share_events partitioned as ``migrate``
        first partitions it (a test's fresh start: no day partitions left from the last)."""
        tables = ("share_events", *(aggregate.table for aggregate in AGGREGATES))
        layout = by_day_ddl(datetime.now(UTC).date())
        for shard in self.shards:
            unpartition = ["ALTER TABLE share_events REMOVE PARTITIONING"] * bool(
                self.partitions(shard)
            )
            self.shard_sql(shard, "; ".join([*(f"TRUNCATE {t}" for t in tables), *unpartition,
                                             layout]))  # fmt: skip

    def partitions(self, shard: str) -> list[str]:
        """share_events's partitions on the shard's own MySQL, past Vitess."""
        return self.shard_sql(shard, "SELECT partition_name FROM information_schema.partitions "
                              "WHERE table_schema = DATABASE() AND table_name = 'share_events' "
                              "AND partition_name IS NOT NULL").split()  # fmt: skip

    def make_primary(self, shard: str) -> None:
        self._until(f"{shard} primary", lambda: self.ctl(
            "TabletExternallyReparented", self.tablet_alias(shard), check=False).returncode == 0,
            60)  # fmt: skip

    def _run_named(self, name: str, argv: list[str], *, root: bool = False) -> None:
        log = (self.dir / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=None if root else _as_nobody)  # fmt: skip
        self.procs.append(proc)
        self.named[name] = proc

    def _wait_port(self, port: int, what: str, timeout: float = 90) -> None:
        def up() -> bool:
            for name, proc in self.named.items():
                if proc.poll() is not None:
                    raise ServerUnavailable(f"{name} exited: {self.logs().get(name + '.log')}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return True
            return False

        self._until(f"{what} listening on {port}", up, timeout)

    def _until(self, what: str, predicate: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise ServerUnavailable(f"Vitess rig: timed out waiting for {what}: "
                                        f"{json.dumps(self.logs())[-3000:]}")  # fmt: skip
            time.sleep(0.3)

    def gate_serves(self) -> bool:
        """vtgate sees a serving PRIMARY for every shard (its own SHOW VITESS_TABLETS)."""
        try:
            rows = [line.split("\t") for line in self.gate_sql("SHOW VITESS_TABLETS").splitlines()]
        except RuntimeError:
            return False
        serving = {r[2] for r in rows if len(r) > 4 and r[3] == "PRIMARY" and r[4] == "SERVING"}
        return serving >= set(self.shards)

    # -- talking to it ----------------------------------------------------------------

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([str(self.bin / "vtctldclient"), "--server", self.vtctld,
                              "--action-timeout=60s", *args], capture_output=True, text=True,
                             timeout=120, check=False)  # fmt: skip
        if check and out.returncode != 0:
            raise RuntimeError(f"vtctldclient {' '.join(args)}: {out.stderr[-2000:]}")
        return out

    def url(self) -> str:
        """What a writer is given in production: vtgate's MySQL port, the keyspace."""
        return f"mysql://stratum@127.0.0.1:{self.vtgate_port}/{self.keyspace}"

    def gate_sql(self, statement: str) -> str:
        any_mysql = next(iter(self.mysql.values()))
        return mysql_cli(any_mysql.client(self.vtgate_port, "stratum"), statement, self.keyspace)

    def shard_sql(self, shard: str, statement: str) -> str:
        """Straight to the shard's MySQL, past Vitess: where the rows really are."""
        return self.mysql[shard].sql(statement, f"vt_{self.keyspace}")

    def vars(self) -> dict[str, Any]:
        """vtgate's /debug/vars: its own counters (queries by plan, errors, health)."""
        url = f"http://127.0.0.1:{self.vtgate_http}/debug/vars"
        with urllib.request.urlopen(url, timeout=5) as r:
            found: dict[str, Any] = json.loads(r.read())
        return found

    def stop(self) -> None:
        super().stop()
        for server in self.mysql.values():
            server.destroy()


def run_keyspace_job(cluster: VitessCluster, volumes: Path) -> dict[str, Step]:
    """The operator's keyspace Job for this cluster, its containers run in order here
    (harness/job_pod.py), with the writer image's commands from this venv."""
    spec = parse_spec({
        "upstreams": ["stratum+tcp://pool.example:3333"],
        "persistence": {"backend": "vitess", "databaseUrlSecret": {"name": "db"}},
        "vitess": {"keyspace": cluster.keyspace, "vtctldAddress": cluster.vtctld,
                   "shards": list(cluster.shards)},
    })  # fmt: skip
    job = desired_objects("main", "pools", spec).keyspace
    assert job is not None
    writer = shutil.which("stratum-writer", path=str(Path(sys.executable).parent))
    assert writer, "stratum-writer is not installed in the venv"
    steps = run_job_pod(job, {release_image("writer"): [writer]}, volumes, path=[cluster.bin])
    return {s.name: s for s in steps}


def set_up_keyspace(cluster: VitessCluster, work: Path) -> None:
    """As in production: the keyspace Job's steps, then the writer's ``migrate`` through
    vtgate."""
    cluster.keyspace_steps = run_keyspace_job(cluster, work / "job")
    settings = work / "writer.json"
    settings.write_text(json.dumps({"vitess_shards": list(cluster.shards)}))
    out = WriterProcess(work / "spool", cluster.url(), config=settings).run_command("migrate")
    assert out.returncode == 0, f"migrate through vtgate: {out.stderr[-2000:]}"
