"""At the door: a connection flood never reaches the pool, one address can't open
connections faster than its allowance (refused before any TLS handshake), and a shortage
of the proxy's own (file descriptors) never marks a pool failed."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import ssl
import threading
import time
from pathlib import Path

from harness.certificates import self_signed
from harness.proxy import ProxyProcess
from harness.sim import SimLoop, answers
from stratum_proxy.closing import CloseReason
from stratum_proxy.connection_limits import Admission

SUBSCRIBE = b'{"id":1,"method":"mining.subscribe","params":[]}\n'
# a TLS 1.2 ClientHello's first bytes, as a miner configured for stratum+ssl sends them
CLIENT_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(32) + bytes.fromhex("000004c02fc030")


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _closed_within(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """(whether the proxy closed it within ``timeout``, every byte it sent meanwhile)."""
    sock.settimeout(0.1)
    got = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return True, got
        if not data:
            return True, got
        got += data
    return False, got


def test_a_flood_of_blank_and_garbage_connections_never_dials_the_pool(
    sim: SimLoop, tmp_path: Path
) -> None:
    pool, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url], handshake_timeout_s=1.5).start()

    def flood(n: int) -> None:
        with _connect(proxy.listen_port) as sock:
            sock.sendall(b"\n" * 50 + b"\r\n" if n % 2 else b"nonsense\n" * 5 + b"\n")
            if n % 3 == 0:
                _closed_within(sock, 4)  # stays until the handshake deadline ends it

    threads = [threading.Thread(target=flood, args=(n,)) for n in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    proxy.wait_for("stratum_proxy_miners", lambda v: v == 0, timeout=10)
    assert pool.connections == 0, "not one pool connection for 200 that never asked to mine"
    metrics = proxy.metrics()
    assert metrics['stratum_proxy_disconnects_total{reason="miner_no_subscribe"}'] >= 60
    assert metrics.get("stratum_proxy_upstream_failures_total", 0) == 0
    # a miner that asks to mine is dialled through as before
    stats = sim.fleet(proxy.listen_port, miners=3, shares_per_s=30, duration=1.5).result(30)
    assert answers(stats)[None] == sum(s.submitted for s in stats) > 10
    assert pool.connections == 3


def test_the_21st_connection_in_a_second_is_refused_before_any_tls_handshake(
    tmp_path: Path, sim: SimLoop
) -> None:
    _, url = sim.pool()
    cert, key = self_signed(tmp_path)
    proxy = ProxyProcess(tmp_path, [url], tls_cert_file=str(cert), tls_key_file=str(key),
                         handshake_timeout_s=3, max_new_connections_per_ip_per_s=20).start()  # fmt: skip
    quiet = [_connect(proxy.listen_port) for _ in range(20)]  # never send a ClientHello
    extra = _connect(proxy.listen_port)
    with contextlib.suppress(OSError):  # it may be reset already
        extra.sendall(CLIENT_HELLO)
    closed, sent = _closed_within(extra, 2)
    assert closed and sent == b"", "refused at the door: not one handshake byte back"
    assert not any(_closed_within(s, 0.05)[0] for s in quiet), "the first 20 wait for a hello"
    metrics = proxy.metrics()
    assert metrics['stratum_proxy_connections_refused_total{reason="address_rate"}'] == 1
    assert metrics["stratum_proxy_tls_handshakes_total"] == 0
    # the allowance refills: a second later a miner over TLS is served
    time.sleep(1.1)
    client = ssl.create_default_context(cafile=str(cert))
    with client.wrap_socket(_connect(proxy.listen_port), server_hostname="127.0.0.1") as tls:
        tls.sendall(SUBSCRIBE)
        assert b'"id":1' in tls.recv(65536)
    assert proxy.metrics()["stratum_proxy_tls_handshakes_total"] == 1
    # the quiet ones end on the handshake deadline, as failed handshakes
    assert all(_closed_within(s, 5)[0] for s in quiet)
    failed = proxy.metrics()['stratum_proxy_disconnects_total{reason="miner_tls_failed"}']
    assert failed == 20


def _lowest_free_fd(pid: int) -> int:
    """Once the process's descriptors stop changing (the start-up scrape's socket closed)."""
    used: set[int] = set()
    for _ in range(50):
        time.sleep(0.2)
        now = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
        if now == used:
            break
        used = now
    return next(n for n in range(len(used) + 1) if n not in used)


def test_running_out_of_file_descriptors_marks_no_pool_failed(sim: SimLoop, tmp_path: Path) -> None:
    primary, primary_url = sim.pool()
    backup, backup_url = sim.pool()
    proxy = ProxyProcess(tmp_path, [primary_url, backup_url]).start()
    assert proxy.proc is not None
    pid = proxy.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    # room for exactly one more descriptor: the miner's socket, and none for the pool's
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (_lowest_free_fd(pid) + 1, hard))
    try:
        with _connect(proxy.listen_port) as sock:
            sock.sendall(SUBSCRIBE)
            closed, sent = _closed_within(sock, 5)
        assert closed and sent == b""
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    local = 'stratum_proxy_disconnects_total{reason="local_resources"}'
    deadline = time.monotonic() + 10  # the socket closes before the reason is counted
    while (metrics := proxy.metrics()).get(local, 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "skipping it for" not in proxy.log.read_text(), "no upstream was marked failed"
    assert metrics.get("stratum_proxy_upstream_failures_total", 0) == 0
    assert metrics[local] == 1
    stats = sim.fleet(proxy.listen_port, miners=3, shares_per_s=30, duration=1.5).result(30)
    assert answers(stats)[None] == sum(s.submitted for s in stats) > 10
    assert primary.connections == 3 and backup.connections == 0


def test_twenty_a_second_per_address_refilled_as_time_passes() -> None:
    door = Admission(max_connections=1000, max_per_address=1000, rate=20)
    assert [door.admit("a", 0.0, stopping=False) for _ in range(20)] == [None] * 20
    assert door.admit("a", 0.01, stopping=False) is CloseReason.REFUSED_ADDRESS_RATE
    assert door.admit("b", 0.01, stopping=False) is None, "another address has its own"
    assert door.admit("a", 0.06, stopping=False) is None, "one more after 1/20 s"
    assert door.admit("a", 0.06, stopping=False) is CloseReason.REFUSED_ADDRESS_RATE


def test_limits_come_before_the_rate_and_a_refusal_spends_nothing() -> None:
    door = Admission(max_connections=3, max_per_address=2, rate=2)
    assert door.admit("a", 0.0, stopping=True) is CloseReason.REFUSED_SHUTTING_DOWN
    assert door.admit("a", 0.0, stopping=False) is None
    assert door.admit("a", 0.0, stopping=False) is None
    assert door.admit("a", 0.0, stopping=False) is CloseReason.REFUSED_ADDRESS_LIMIT
    door.left("a")
    assert door.admit("a", 0.0, stopping=False) is CloseReason.REFUSED_ADDRESS_RATE
    assert door.admit("b", 0.0, stopping=False) is None
    assert door.admit("b", 0.0, stopping=False) is None
    assert door.admit("c", 0.0, stopping=False) is CloseReason.REFUSED_CONNECTION_LIMIT


def test_an_address_whose_allowance_has_refilled_is_forgotten() -> None:
    door = Admission(max_connections=10, max_per_address=10, rate=2)
    door.admit("a", 0.0, stopping=False)
    door.forget_idle(0.1)
    assert door.admit("a", 0.1, stopping=False) is None  # still remembered: one left
    assert door.admit("a", 0.1, stopping=False) is CloseReason.REFUSED_ADDRESS_RATE
    door.forget_idle(5.0)
    assert door.admit("a", 5.0, stopping=False) is None
