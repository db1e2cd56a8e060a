"""Why a miner connection ends: one typed vocabulary for the log, the metric and the logic.

A reason names the side that ended the connection. Only an ``UPSTREAM`` reason may mark
an upstream failed: nothing a miner does (closing, resetting, not reading, flooding) is
ever taken for a pool failure. The metric label is the reason's value, never a string
parsed back out of a message.

    Closed
    ├── side MINER     the miner closed, reset, went silent, sent too much or too badly
    ├── side UPSTREAM  the pool closed, went silent, sent a line too long, or none answered
    └── side PROXY     we are shutting down, something of ours failed or ran out (file
                       descriptors, buffers), or we refused the connection at the door

A refusal (``REFUSED_*``) ends a connection before it is served: it is counted in
``stratum_proxy_connections_refused_total{reason}``, not among the disconnects.
"""

from __future__ import annotations

import enum


class Side(enum.Enum):
    MINER = "miner"
    UPSTREAM = "upstream"
    PROXY = "proxy"


class CloseReason(enum.Enum):
    """The metric label (``stratum_proxy_disconnects_total{reason}``) is the value."""

    MINER_CLOSED = "miner_closed"
    MINER_RESET = "miner_reset"
    MINER_LINE_TOO_LONG = "miner_line_too_long"
    MINER_SILENT = "miner_silent"
    MINER_INVALID_LINES = "miner_invalid_lines"
    MINER_NOT_READING = "miner_not_reading"
    MINER_FLOODING = "miner_flooding"
    MINER_NO_SUBSCRIBE = "miner_no_subscribe"
    MINER_TLS_FAILED = "miner_tls_failed"
    CONNECT_REFUSED = "connect_refused"
    UPSTREAM_CLOSED = "upstream_closed"
    UPSTREAM_RESET = "upstream_reset"
    UPSTREAM_LINE_TOO_LONG = "upstream_line_too_long"
    UPSTREAM_SILENT = "upstream_silent"
    NO_UPSTREAM = "no_upstream"
    SHUTDOWN = "shutdown"
    INTERNAL_ERROR = "internal_error"
    LOCAL_RESOURCES = "local_resources"
    REFUSED_SHUTTING_DOWN = "shutting_down"
    REFUSED_CONNECTION_LIMIT = "connection_limit"
    REFUSED_ADDRESS_LIMIT = "address_limit"
    REFUSED_ADDRESS_RATE = "address_rate"

    @property
    def side(self) -> Side:
        if self.name.startswith(("MINER_", "CONNECT_")):
            return Side.MINER
        if self.name.startswith(("UPSTREAM_", "NO_UPSTREAM")):
            return Side.UPSTREAM
        return Side.PROXY

    @property
    def refusal(self) -> bool:
        """Ended at the door, before a byte was read (or a TLS handshake began)."""
        return self.name.startswith("REFUSED_")

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]

    @property
    def worth_a_warning(self) -> bool:
        """Reasons an operator should see at WARNING: hostile or broken miners, our bugs."""
        return self in _WARN


_DESCRIPTIONS = {
    CloseReason.MINER_CLOSED: "the miner closed the connection",
    CloseReason.MINER_RESET: "the miner's connection broke",
    CloseReason.MINER_LINE_TOO_LONG: "the miner sent a line longer than the limit",
    CloseReason.MINER_SILENT: "the miner sent no complete line in time",
    CloseReason.MINER_INVALID_LINES: "the miner sent too many invalid lines",
    CloseReason.MINER_NOT_READING: "the miner stopped reading",
    CloseReason.MINER_FLOODING: "the miner sent too many requests without waiting for replies",
    CloseReason.MINER_NO_SUBSCRIBE: "the miner asked for no work (subscribe, configure) in time",
    CloseReason.MINER_TLS_FAILED: "the miner's TLS handshake failed or took too long",
    CloseReason.CONNECT_REFUSED: "the miner's CONNECT preamble was refused",
    CloseReason.UPSTREAM_CLOSED: "the pool closed the connection",
    CloseReason.UPSTREAM_RESET: "the pool's connection broke",
    CloseReason.UPSTREAM_LINE_TOO_LONG: "the pool sent a line longer than the limit",
    CloseReason.UPSTREAM_SILENT: "the pool sent nothing in time",
    CloseReason.NO_UPSTREAM: "no upstream reachable",
    CloseReason.SHUTDOWN: "the proxy is shutting down",
    CloseReason.INTERNAL_ERROR: "the proxy failed",
    CloseReason.LOCAL_RESOURCES: "the proxy ran out of a resource of its own machine",
    CloseReason.REFUSED_SHUTTING_DOWN: "refused: the proxy is shutting down",
    CloseReason.REFUSED_CONNECTION_LIMIT: "refused: the proxy holds max_connections",
    CloseReason.REFUSED_ADDRESS_LIMIT: "refused: this address holds max_connections_per_ip",
    CloseReason.REFUSED_ADDRESS_RATE: "refused: this address opened connections too fast",
}

_WARN = frozenset(
    {
        CloseReason.MINER_LINE_TOO_LONG,
        CloseReason.MINER_SILENT,
        CloseReason.MINER_INVALID_LINES,
        CloseReason.MINER_FLOODING,
        CloseReason.MINER_NO_SUBSCRIBE,
        CloseReason.INTERNAL_ERROR,
        CloseReason.LOCAL_RESOURCES,
    }
)


class Closed(Exception):
    """The connection ends, for ``reason``; ``detail`` is for the log line only."""

    def __init__(self, reason: CloseReason, detail: str = "") -> None:
        text = reason.description
        super().__init__(f"{text} ({detail})" if detail else text)
        self.reason = reason
        self.detail = detail

    @property
    def side(self) -> Side:
        return self.reason.side


def stream_failure(side: Side, exc: BaseException | None) -> Closed:
    """A read or write that failed: closed cleanly (EOF) or reset (an OS error)."""
    if side is Side.MINER:
        closed, reset = CloseReason.MINER_CLOSED, CloseReason.MINER_RESET
    else:
        closed, reset = CloseReason.UPSTREAM_CLOSED, CloseReason.UPSTREAM_RESET
    if exc is None:
        return Closed(closed)
    return Closed(reset, str(exc) or type(exc).__name__)
