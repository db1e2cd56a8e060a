"""What a pool operator sees running the proxy: config errors, routes, TLS, shutdown."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.certificates import self_signed
from harness.proxy import ProxyProcess
from harness.sim import SimLoop, answers
from stratum_sim.miners import Behaviour


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({}, "upstreams: Field required"),
        ({"upstreams": ["http://pool:80"]}, "is not stratum+tcp://host:port"),
        ({"upstreams": ["stratum+tcp://pool"]}, "has no port"),
        ({"upstreams": ["stratum+tcp://p:1"], "submit_timeout_s": -1}, "submit_timeout_s"),
        ({"upstreams": ["stratum+tcp://p:1"], "max_conections": 5}, "max_conections: Extra"),
        ({"upstreams": ["stratum+tcp://p:1"], "routes": {"a": []}}, "route 'a' has no upstreams"),
        (
            {"upstreams": ["stratum+tcp://p:1"], "sidecar_metrics": {"writer": "9102"}},
            "sidecar 'writer': '9102' is not HOST:PORT",
        ),
    ],
)
def test_a_bad_config_is_one_clear_line_and_exit_2(
    tmp_path: Path, config: dict[str, Any], says: str
) -> None:
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps(config))
    out = subprocess.run([sys.executable, "-m", "stratum_proxy.cli", "--config", str(path)],
                         capture_output=True, text=True, timeout=30, check=False)  # fmt: skip
    assert out.returncode == 2
    assert says in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_connect_preamble_picks_the_named_pool(sim: SimLoop, tmp_path: Path) -> None:
    default, default_url = sim.pool()
    blue, blue_url = sim.pool()
    proxy = ProxyProcess(tmp_path, [default_url], routes={"blue": [blue_url]}).start()
    stats = sim.fleet(proxy.listen_port, 4, 40, 2, Behaviour(route="blue")).result(30)
    assert answers(stats)[None] == sum(s.submitted for s in stats) > 20
    assert len(blue.ledger) > 0 and len(default.ledger) == 0
    with socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5) as sock:
        sock.sendall(b"CONNECT nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 404")


def test_tls_for_miners_and_to_a_verified_upstream(sim: SimLoop, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    pool, url = sim.pool(tls=server_tls)
    assert url.startswith("stratum+ssl://")
    proxy = ProxyProcess(tmp_path, [url], upstream_ca_file=str(cert),
                         tls_cert_file=str(cert), tls_key_file=str(key)).start()  # fmt: skip
    stats = sim.fleet(proxy.listen_port, 4, 40, 2, Behaviour(tls=True)).result(30)
    assert answers(stats)[None] == sum(s.submitted for s in stats) > 20
    assert len(pool.ledger) == sum(s.submitted for s in stats)


def test_an_unverifiable_upstream_certificate_is_refused(sim: SimLoop, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    pool, url = sim.pool(tls=server_tls)
    proxy = ProxyProcess(tmp_path, [url]).start()  # no CA given: the system store
    with socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5) as sock:
        sock.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
        assert sock.makefile("rb").readline() == b""  # closed: no upstream it could trust
    assert pool.ledger == [] and "CERTIFICATE_VERIFY_FAILED" in proxy.log.read_text()


def test_sigterm_asks_miners_to_reconnect_and_exits_cleanly(sim: SimLoop, tmp_path: Path) -> None:
    _, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url], shutdown_grace_s=3).start()
    sock = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=10)
    reader = sock.makefile("rb")
    sock.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
    assert json.loads(reader.readline())["id"] == 1
    started = time.monotonic()
    assert proxy.proc is not None
    proxy.proc.terminate()
    seen = [json.loads(line) for line in iter(reader.readline, b"")]
    assert {"id": None, "method": "client.reconnect", "params": []} in seen
    assert proxy.proc.wait(15) == 0
    assert time.monotonic() - started < 8
    log = proxy.log.read_text()
    assert "asking 1 miners to reconnect" in log and "stopped:" in log


def test_a_stalled_pool_times_shares_out_not_in(sim: SimLoop, tmp_path: Path) -> None:
    pool, url = sim.pool()
    pool.faults.stall = True  # it takes submits and never answers
    proxy = ProxyProcess(tmp_path, [url], submit_timeout_s=1).start()
    stats = sim.fleet(proxy.listen_port, 2, 10, 1.5).result(30)
    heard = answers(stats)
    assert heard[None] == 0 and heard[20] == sum(s.submitted for s in stats) > 5
    metrics = proxy.metrics()
    assert metrics['stratum_proxy_shares_total{code="-1",verdict="rejected"}'] == heard[20]
