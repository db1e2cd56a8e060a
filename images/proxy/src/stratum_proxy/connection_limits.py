"""Who gets in: the checks a new connection passes before the proxy reads a byte of it.

Pure state, the clock passed in. The server asks ``admit`` on the plain TCP connection,
before any TLS handshake, so a flood costs an accept and a close, never a handshake, a
line read or a pool connection. In order:

1. the proxy is not shutting down;
2. it holds fewer than ``max_connections``;
3. the address holds fewer than ``max_connections_per_ip``;
4. the address has opened no more than ``max_new_connections_per_ip_per_s`` in the last
   second (a token bucket as deep as one second's allowance, refilled continuously).

A refused connection spends no token: a farm behind one NAT that reconnects all at once
after an outage gets in at the configured rate, however hard it retries.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from stratum_proxy.closing import CloseReason


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was last brought up to date


class Admission:
    __slots__ = ("_buckets", "max_connections", "max_per_address", "open", "per_address",
                 "rate")  # fmt: skip

    def __init__(self, max_connections: int, max_per_address: int, rate: float) -> None:
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.rate = rate  # new connections per second per address, and the bucket's depth
        self.open = 0
        self.per_address: Counter[str] = Counter()
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, address: str, now: float, *, stopping: bool) -> CloseReason | None:
        """None: let it in (and count it open); otherwise why it is refused."""
        if stopping:
            return CloseReason.REFUSED_SHUTTING_DOWN
        if self.open >= self.max_connections:
            return CloseReason.REFUSED_CONNECTION_LIMIT
        if self.per_address[address] >= self.max_per_address:
            return CloseReason.REFUSED_ADDRESS_LIMIT
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = _Bucket(self.rate, now)
        else:
            bucket.tokens = min(self.rate, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens < 1:
            return CloseReason.REFUSED_ADDRESS_RATE
        bucket.tokens -= 1
        self.open += 1
        self.per_address[address] += 1
        return None

    def left(self, address: str) -> None:
        """A connection ``admit`` let in has ended."""
        self.open -= 1
        self.per_address[address] -= 1
        if self.per_address[address] <= 0:
            del self.per_address[address]

    def forget_idle(self, now: float) -> None:
        """Drop the buckets that have refilled: such an address is as good as new."""
        full = [
            a for a, b in self._buckets.items() if b.tokens + (now - b.at) * self.rate >= self.rate
        ]
        for address in full:
            del self._buckets[address]
