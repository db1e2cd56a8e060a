"""A connection's first lines: nothing reaches the pool before a subscribe or a configure.

The proxy dials the pool for a connection only once it has asked to mine, so a flood of
connections that send nothing, blank lines or garbage never becomes a flood on the pool
from the farm's address. Pure state, no I/O; until then each line is one of:

- blank: ignored;
- not Stratum: answered at once with its JSON-RPC error, against the error budget (held
  instead when requests are already held, so the replies keep their order);
- ``mining.subscribe`` or ``mining.configure``: dial the pool, then relay what was held
  and this line, in the order they came;
- ``mining.submit`` before anything is held: refused at once, 25 "not subscribed"
  (admission.py), counted and never stored: no share can be attributed before a
  subscribe, so holding it would only keep the miner from its answer;
- any other message: held, at most ``max_held`` of them and ``max_held_bytes`` in all
  (a submit behind held requests too, so the replies keep their order: the session
  refuses it in its turn).

The handshake deadline covers the whole opening: a connection that has not asked to mine
within ``handshake_timeout_s`` of arriving is closed.
"""

from __future__ import annotations

from stratum_proxy.admission import Refusal, Refused
from stratum_proxy.closing import Closed, CloseReason
from stratum_proxy.messages import ProtocolError, Request, encode_response, parse

DIAL_METHODS = frozenset({"mining.subscribe", "mining.configure"})


class Opening:
    __slots__ = ("dial", "held", "held_bytes", "lines", "max_errors", "max_held",
                 "max_held_bytes", "protocol_errors", "refused")  # fmt: skip

    def __init__(self, *, max_held: int, max_held_bytes: int, max_errors: int) -> None:
        self.max_held = max_held
        self.max_held_bytes = max_held_bytes
        self.max_errors = max_errors
        self.held: list[bytes] = []  # raw lines, without their newline, to relay in order
        self.held_bytes = 0
        self.dial = False  # a subscribe or configure came: time to connect to the pool
        self.lines = 0  # complete lines seen, blank ones included
        self.protocol_errors = 0  # answered here, so already spent from the budget
        self.refused: list[Refusal] = []  # answered here, for the connection to count

    def take(self, line: bytes) -> bytes | None:
        """The next line; returns the answer to send the miner now, if any."""
        self.lines += 1
        if not line:
            return None
        try:
            msg = parse(line)
        except ProtocolError as exc:
            return self._not_stratum(line, exc)
        self.dial = isinstance(msg, Request) and msg.method in DIAL_METHODS
        if isinstance(msg, Request) and msg.method == "mining.submit" and not self.held:
            self.refused.append(Refusal.NOT_SUBSCRIBED)
            return encode_response(msg.id, None, Refused(Refusal.NOT_SUBSCRIBED).error())
        if self.dial:
            self.held.append(line)  # whatever was held before: it asked to mine
        else:
            self._hold(line)
        return None

    def _not_stratum(self, line: bytes, exc: ProtocolError) -> bytes | None:
        if self.held:
            self._hold(line)  # answered in its place once the pool is dialled
            return None
        self.protocol_errors += 1
        if self.protocol_errors >= self.max_errors:
            raise Closed(CloseReason.MINER_INVALID_LINES, f"{self.protocol_errors} lines")
        return exc.response()

    def _hold(self, line: bytes) -> None:
        self.held_bytes += len(line)
        if len(self.held) >= self.max_held or self.held_bytes > self.max_held_bytes:
            raise Closed(CloseReason.MINER_NO_SUBSCRIBE, f"{len(self.held) + 1} lines held")
        self.held.append(line)

    def deadline_passed(self, timeout: float) -> Closed:
        """Why the connection ends when the handshake deadline passes before a dial."""
        if self.lines == 0:
            return Closed(CloseReason.MINER_SILENT, f"no complete line for {timeout:.0f}s")
        return Closed(CloseReason.MINER_NO_SUBSCRIBE, f"none within {timeout:.0f}s")
