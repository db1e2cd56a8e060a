"""Fixtures shared by every test suite: real database servers, one fresh database a test."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.databases import Database, MariaDBServer, PostgresServer, sqlite_query
from harness.kubernetes import ROOT, ControlPlane
from harness.mysql import MySQLServer
from harness.operator import OperatorProcess
from harness.service import kill_all_services
from harness.sim import SimLoop
from harness.vitess import Vtctld
from harness.vitess_cluster import VitessCluster, set_up_keyspace

_names = itertools.count()


@pytest.fixture(autouse=True)
def _no_stray_processes() -> Iterator[None]:
    yield
    kill_all_services(keep=_keep_running)


_keep_running: list[OperatorProcess] = []  # session-wide processes that outlive a test


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    server = MariaDBServer()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def mysql() -> Iterator[MySQLServer]:
    """MySQL 9.7 (Debian unstable's, in its own root): the mysql backend meets MySQL too."""
    server = MySQLServer(buffer_pool="256M")
    yield server
    server.destroy()


def make_database(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    name = f"t{next(_names)}"
    if kind == "postgres":
        pg: PostgresServer = request.getfixturevalue("postgres")
        url = pg.create_database(name)
        return Database(kind, url, lambda sql: pg.psql(sql, name), pg)
    if kind in ("mariadb", "mysql"):
        server: MariaDBServer | MySQLServer = request.getfixturevalue(kind)
        url = server.create_database(name)
        return Database(kind, url, lambda sql: server.sql(sql, name), server)
    path = tmp_path / "shares.db"
    return Database(kind, f"sqlite:///{path}", sqlite_query(path))


@pytest.fixture(params=["postgres", "mariadb", "mysql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return make_database(request.param, request, tmp_path)


@pytest.fixture(params=["postgres", "mariadb", "mysql"])
def server_database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A database whose server process the test may kill and restart."""
    return make_database(request.param, request, tmp_path)


@pytest.fixture(params=["mariadb", "mysql"])
def mysql_family_database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """MariaDB and MySQL 9.7: the two servers the mysql backend meets."""
    return make_database(request.param, request, tmp_path)


@pytest.fixture
def postgres_db(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return make_database("postgres", request, tmp_path)


@pytest.fixture
def outage_db() -> Iterator[PostgresServer]:
    """A PostgreSQL of the test's own, for it to kill and start again."""
    server = PostgresServer()
    yield server
    server.destroy()


@pytest.fixture
def sim() -> Iterator[SimLoop]:
    """A reference pool and load generator on their own event loop thread."""
    loop = SimLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def vtctld() -> Iterator[Vtctld]:
    """etcd topology + a real vtctld (built from vitess.io/vitess), with one cell."""
    server = Vtctld()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vitess_rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VitessCluster]:
    """A real two-shard Vitess cluster on MySQL 9.7, its keyspace set up by the operator's
    keyspace Job and migrated by the writer through vtgate, as in production."""
    cluster = VitessCluster()
    try:
        set_up_keyspace(cluster, tmp_path_factory.mktemp("keyspace"))
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def vitess_cluster(vitess_rig: VitessCluster) -> VitessCluster:
    """The session's Vitess cluster, in MULTI mode, its share tables emptied."""
    vitess_rig.set_transaction_mode("MULTI")
    vitess_rig.clear()
    return vitess_rig


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver (RBAC) + kube-controller-manager, built from source, once."""
    plane = ControlPlane()
    yield plane
    plane.stop()


RELEASE_NAMESPACE = "stratum-system"


@pytest.fixture(scope="session")
def installed_chart(control_plane: ControlPlane) -> ControlPlane:
    """Our chart, installed with real helm: the CRD, the RBAC, the ServiceAccount."""
    out = subprocess.run(
        [str(control_plane.bin / "helm"), "install", "stratum-operator",
         str(ROOT / "charts" / "stratum-operator"), "--namespace", RELEASE_NAMESPACE,
         "--create-namespace", "--kubeconfig", str(control_plane.kubeconfig), "--wait=false"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    control_plane.wait("the StratumPool CRD to be served", lambda: "stratumpools" in control_plane.kubectl(
        "api-resources", "--api-group=stratum.io", check=False))  # fmt: skip
    return control_plane


@pytest.fixture(scope="session")
def operator(
    installed_chart: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator process, acting as exactly the chart's ServiceAccount."""
    identity = installed_chart.kubeconfig_for(RELEASE_NAMESPACE, "stratum-operator")
    proc = OperatorProcess(tmp_path_factory.mktemp("operator"), identity)
    proc.spawn(proc.command())
    _keep_running.append(proc)
    yield proc
    _keep_running.remove(proc)
    proc.terminate(30)


_namespaces = itertools.count()


@pytest.fixture
def ns(installed_chart: ControlPlane, operator: OperatorProcess) -> str:
    name = f"pool-{next(_namespaces)}"
    installed_chart.kubectl("create", "namespace", name)
    return name
