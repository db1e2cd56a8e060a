"""Miner connections are untrusted: whatever one sends, the proxy stays up, keeps serving
the well-behaved miners beside it, and keeps its memory bounded."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.proxy import ProxyProcess
from harness.sim import SimLoop, answers

METHODS = [
    "mining.subscribe", "mining.authorize", "mining.submit", "mining.configure",
    "mining.extranonce.subscribe", "mining.suggest_difficulty", "client.get_version",
    "mining.notify", "mining.set_difficulty", "client.reconnect",
]  # fmt: skip


@pytest.fixture
def proxy(sim: SimLoop, tmp_path: Path) -> ProxyProcess:
    _, url = sim.pool()
    return ProxyProcess(
        tmp_path, [url], handshake_timeout_s=1.5, max_connections_per_ip=400,
        max_line_bytes=16384, max_protocol_errors=20,
    ).start()  # fmt: skip


def _connect(proxy: ProxyProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5)


def _closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    """True when the proxy closes the connection within ``timeout`` (reading what comes)."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


def test_a_10mb_line_is_cut_off_while_other_miners_mine_on(
    sim: SimLoop, proxy: ProxyProcess
) -> None:
    fleet = sim.fleet(proxy.listen_port, miners=10, shares_per_s=100, duration=4)
    time.sleep(1)
    sock = _connect(proxy)
    sent = 0
    chunk = b"A" * 65536
    with pytest.raises(OSError):  # reset or broken pipe: the proxy hung up on us
        while sent < 10 << 20:
            sock.sendall(chunk)
            sent += len(chunk)
        assert _closed_by_peer(sock, 5)
        raise ConnectionResetError("closed after the whole line")
    sock.close()
    assert sent < 10 << 20, "cut off long before the 10 MB were in"
    stats = fleet.result(60)
    heard = answers(stats)
    assert heard[None] == sum(s.submitted for s in stats) > 100, heard
    assert proxy.alive()
    assert "sent a line longer than the limit" in proxy.log.read_text()
    metrics = proxy.metrics()
    assert metrics['stratum_proxy_disconnects_total{reason="miner_line_too_long"}'] == 1


def test_slowloris_and_silent_connections_are_closed_on_the_handshake_deadline(
    proxy: ProxyProcess,
) -> None:
    silent = _connect(proxy)
    drip = _connect(proxy)
    started = time.monotonic()
    drip.sendall(b'{"id": 1, "method": "mining.subscribe", ')
    for _ in range(6):  # one byte every 0.3 s, never a newline
        time.sleep(0.3)
        try:
            drip.sendall(b" ")
        except OSError:
            break
    assert _closed_by_peer(drip, 3) and _closed_by_peer(silent, 3)
    assert time.monotonic() - started < 5
    metrics = proxy.metrics()
    assert metrics['stratum_proxy_disconnects_total{reason="miner_silent"}'] == 2


def test_connections_per_source_ip_are_limited(sim: SimLoop, tmp_path: Path) -> None:
    _, url = sim.pool()
    proxy = ProxyProcess(tmp_path, [url], max_connections_per_ip=3).start()
    held = [_connect(proxy) for _ in range(3)]
    for s in held:
        s.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
        assert json.loads(s.makefile().readline())["id"] == 1
    extra = _connect(proxy)
    assert _closed_by_peer(extra, 3), "the fourth connection from one IP is refused"
    assert proxy.metrics()['stratum_proxy_connections_refused_total{reason="address_limit"}'] == 1


def test_garbage_gets_json_rpc_errors_and_too_much_of_it_closes(proxy: ProxyProcess) -> None:
    sock = _connect(proxy)
    reader = sock.makefile("rb")
    sock.sendall(b"GET / HTTP/1.1\r\n")
    assert orjson.loads(reader.readline())["error"][0] == -32700
    sock.sendall(b'[1, 2, 3]\n{"id": {"x": 1}, "method": "m"}\n{"id": 5, "method": 7}\n')
    codes = [orjson.loads(reader.readline())["error"][0] for _ in range(3)]
    assert codes == [-32600, -32600, -32600]
    sock.sendall(b"nonsense\n" * 30)
    assert _closed_by_peer(sock, 5), "past the error budget the miner is cut off"


json_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False), st.text(max_size=40),
    st.text(alphabet="0123456789abcdef", min_size=0, max_size=70),
)  # fmt: skip
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
stratum_like = st.fixed_dictionaries(
    {"id": json_value, "method": st.one_of(st.sampled_from(METHODS), st.text(max_size=30), json_value)},
    optional={"params": st.one_of(st.lists(json_value, max_size=8), json_value),
              "result": json_value, "error": json_value},
)  # fmt: skip
# A TLS 1.2 ClientHello's first bytes, as a miner configured for stratum+ssl sends them
CLIENT_HELLO = bytes.fromhex("16030100a5010000a10303") + bytes(32) + bytes.fromhex("000004c02fc030")
huge_number = st.sampled_from([b"1e999", b"-1e999", b"1" * 5000, b"18446744073709551616", b"1.5"])
nested = st.integers(min_value=1, max_value=1100).map(lambda n: b"[" * n + b"]" * n)
any_id = st.one_of(
    huge_number, nested, st.sampled_from([b"null", b"{}", b"[]", b'{"a":1}', b"[1]"])
)
hex_param = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=9),  # odd lengths included
    st.integers(min_value=65, max_value=5000).map(lambda n: "a" * n),  # huge
).map(orjson.dumps)
grammar_line = st.one_of(
    st.tuples(any_id, st.sampled_from(METHODS), st.lists(any_id, max_size=3)).map(
        lambda t: b'{"id":%s,"method":"%s","params":[%s]}' % (t[0], t[1].encode(), b",".join(t[2]))
    ),
    st.tuples(any_id, hex_param, hex_param, hex_param).map(
        lambda t: b'{"id":%s,"method":"mining.submit","params":["fuzz.1","1",%s,%s,%s]}' % t
    ),
    st.sampled_from(
        [
            CLIENT_HELLO,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /rpc HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ]
    ),
)
hostile_line = st.one_of(
    grammar_line,
    stratum_like.map(lambda d: orjson.dumps(d, option=orjson.OPT_NON_STR_KEYS)),
    st.binary(max_size=300),
    st.integers(min_value=2**64).map(
        lambda n: b'{"id": %d, "method": "mining.submit", "params": [%d]}' % (n, n)
    ),
    st.text(max_size=300).map(str.encode),
    stratum_like.map(lambda d: orjson.dumps(d)[: len(orjson.dumps(d)) // 2]),  # torn JSON
)


def _fuzz_one(proxy: ProxyProcess, lines: list[bytes], handshake: bool) -> None:
    with _connect(proxy) as sock:
        if handshake:
            sock.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n'
                         b'{"id":2,"method":"mining.authorize","params":["fuzz.1","x"]}\n')  # fmt: skip
        sock.sendall(b"\n".join(lines) + b"\n")
        sock.settimeout(0.05)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass


def test_fuzzed_lines_never_take_the_proxy_down(sim: SimLoop, proxy: ProxyProcess) -> None:
    fleet = sim.fleet(proxy.listen_port, miners=10, shares_per_s=50, duration=25)
    baseline: list[int] = []
    count = [0]

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(lines=st.lists(hostile_line, min_size=1, max_size=12), handshake=st.booleans())
    def fuzz(lines: list[bytes], handshake: bool) -> None:
        _fuzz_one(proxy, lines, handshake)
        count[0] += 1
        if count[0] == 50:
            baseline.append(proxy.rss_kb())
        assert proxy.alive(), proxy.log.read_text()[-3000:]

    fuzz()
    stats = fleet.result(90)
    heard = answers(stats)
    assert heard[None] == sum(s.submitted for s in stats) > 200, heard
    assert proxy.alive()
    growth_mb = (proxy.rss_kb() - baseline[0]) / 1024
    assert growth_mb < 16, f"RSS grew {growth_mb:.1f} MB over {count[0]} hostile connections"
    assert "Traceback" not in proxy.log.read_text()
    scraped: dict[str, Any] = proxy.metrics()
    assert scraped["stratum_proxy_protocol_errors_total"] > 0


def test_ten_thousand_pipelined_submits_without_reading(sim: SimLoop, proxy: ProxyProcess) -> None:
    fleet = sim.fleet(proxy.listen_port, miners=10, shares_per_s=50, duration=6)
    with _connect(proxy) as sock:
        sock.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n'
                     b'{"id":2,"method":"mining.authorize","params":["flood.1","x"]}\n')  # fmt: skip
        submit = b'{"id":%d,"method":"mining.submit","params":["flood.1","1","00000000",'
        burst = b"".join(submit % i + b'"00000000","00000000"]}\n' for i in range(10_000))
        with contextlib.suppress(OSError):  # it may hang up on us: that is allowed
            sock.sendall(burst)
        time.sleep(2)  # never reading a byte
    stats = fleet.result(60)
    heard = answers(stats)
    assert heard[None] == sum(s.submitted for s in stats) > 100, heard
    assert proxy.alive() and "Traceback" not in proxy.log.read_text()
