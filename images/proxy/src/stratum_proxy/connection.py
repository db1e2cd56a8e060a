"""The I/O of one miner connection: its socket, its upstream socket, and its timers.

Everything the protocol decides is in ``session``; this module only moves lines, applies
the limits that keep one hostile client from hurting the others (line length, idle and
handshake deadlines, protocol-error budget, outbound buffer), and hands finished shares
to the spool, which never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from sharelog.event import ShareEvent
from sharelog.spool import SpoolProducer
from stratum_proxy.config import ProxyConfig
from stratum_proxy.messages import ProtocolError, Request, parse
from stratum_proxy.metrics import ProxyMetrics
from stratum_proxy.session import MinerSession, Outbox, SessionSettings
from stratum_proxy.upstream import NoUpstream, UpstreamPool

log = logging.getLogger("stratum_proxy.connection")

_MAX_OUTBOUND = 1 << 20  # a miner that stops reading is cut off past this much backlog
_PREAMBLE_LINES = 32


class Closed(Exception):
    """The connection ends; the message says why (for the log line and the metric)."""


@dataclass
class ProxyContext:
    config: ProxyConfig
    settings: SessionSettings
    pools: dict[str, UpstreamPool]  # "" is the default list; others are CONNECT routes
    spool: SpoolProducer
    metrics: ProxyMetrics
    stopping: asyncio.Event


async def _read_line(reader: asyncio.StreamReader, who: str) -> bytes:
    """One line, newline stripped; Closed (saying why) when there can be no more."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        raise Closed(f"{who} sent a line longer than the limit") from None
    except asyncio.IncompleteReadError:
        raise Closed(f"{who} closed the connection") from None
    except (ConnectionError, OSError) as exc:
        raise Closed(f"{who} connection error: {exc}") from None
    return line.rstrip(b"\r\n")


async def _first_line(reader: asyncio.StreamReader, timeout: float) -> bytes:  # noqa: ASYNC109 - the handshake deadline
    try:
        async with asyncio.timeout(timeout):
            return await _read_line(reader, "miner")
    except TimeoutError:
        raise Closed(f"miner sent no complete line for {timeout:.0f}s") from None


def _write(writer: asyncio.StreamWriter, data: bytes, who: str) -> None:
    """Write, or end the connection if that side has gone.

    uvloop raises RuntimeError on a closed transport where asyncio drops the data; either
    way the line can't be delivered, and the connection is over.
    """
    if writer.transport.is_closing():
        raise Closed(f"{who} closed the connection")
    writer.write(data)


async def _preamble(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ProxyContext
) -> tuple[str, bytes | None]:
    """Pick the upstream list: an HTTP CONNECT preamble names a route; otherwise default.

    Returns the route name and, without a preamble, the miner's first line to process.
    """
    first = await _first_line(reader, ctx.config.handshake_timeout_s)
    if not first.startswith(b"CONNECT "):
        return "", first
    parts = first.split()
    name = parts[1].decode(errors="replace") if len(parts) >= 2 else ""
    for _ in range(_PREAMBLE_LINES):  # the rest of the HTTP request head
        if not await _first_line(reader, ctx.config.handshake_timeout_s):
            break
    else:
        raise Closed("miner's CONNECT preamble has no end")
    if name not in ctx.pools:
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        raise Closed(f"CONNECT to unknown pool {name[:64]!r}")
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    return name, None


class MinerConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ctx: ProxyContext,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.ctx = ctx
        self.session: MinerSession | None = None
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.protocol_errors = 0
        self.subscribed = False
        # Deadlines are checked by the server's sweep once a second, not per read: a
        # timeout per line costs a task per line, a timer per connection a wake-up per
        # second per miner, and these only need second precision.
        self.miner_seen = self.upstream_seen = time.monotonic()
        self.abort_reason: str | None = None

    async def run(self) -> str:
        """Serve until the miner or the upstream goes; return why, for the log."""
        try:
            route, first = await _preamble(self.reader, self.writer, self.ctx)
            pool = self.ctx.pools[route]
            try:
                up_reader, up_writer, url = await pool.connect(self.ctx.config.max_line_bytes)
            except NoUpstream as exc:
                self.ctx.metrics.upstream_reconnects.inc()
                raise Closed(f"no upstream reachable ({exc})") from None
            self.upstream_writer = up_writer
            self.session = MinerSession(self.ctx.settings, url)
            if first is not None:
                await self._from_miner(first)
            tasks = [
                asyncio.create_task(self._miner_loop()),
                asyncio.create_task(self._upstream_loop(up_reader, pool, url)),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            if self.abort_reason is not None:  # the sweep ended it, and said why
                return self.abort_reason
            reason = "closed"
            for task in done:
                failure = task.exception()
                if isinstance(failure, Closed):
                    reason = str(failure)
                elif failure is not None:
                    log.error("connection failed: %r", failure)
                    reason = f"internal error: {type(failure).__name__}"
            return reason
        except Closed as exc:
            return str(exc)
        finally:
            await self._finish()

    async def _miner_loop(self) -> None:
        while True:
            line = await _read_line(self.reader, "miner")
            self.miner_seen = time.monotonic()
            if line:
                await self._from_miner(line)

    async def _from_miner(self, line: bytes) -> None:
        assert self.session is not None
        try:
            msg = parse(line)
        except ProtocolError as exc:
            self.protocol_errors += 1
            self.ctx.metrics.protocol_errors.inc()
            self._write_miner([exc.response()])
            if self.protocol_errors >= self.ctx.config.max_protocol_errors:
                raise Closed("too many invalid lines from the miner") from None
            return
        if isinstance(msg, Request):
            self.ctx.metrics.request(msg.method)
            if msg.method == "mining.subscribe":
                self.subscribed = True
        out = Outbox()
        self.session.from_miner(msg, line + b"\n", out)
        await self._deliver(out)

    async def _upstream_loop(
        self, reader: asyncio.StreamReader, pool: UpstreamPool, url: str
    ) -> None:
        assert self.session is not None
        try:
            while True:
                line = await _read_line(reader, "upstream")
                self.upstream_seen = time.monotonic()
                if not line:
                    continue
                try:
                    msg = parse(line)
                except ProtocolError:
                    log.warning("upstream %s sent an invalid line; ignored", url)
                    continue
                out = Outbox()
                self.session.from_upstream(msg, line + b"\n", out)
                await self._deliver(out)
        except Closed as exc:
            if not self.ctx.stopping.is_set():
                pool.mark_failed(url, str(exc))
                self.ctx.metrics.upstream_reconnects.inc()
            out = Outbox()
            self.session.upstream_lost(f"upstream lost: {exc}", out)
            await self._deliver(out)
            # The miner reconnects and lands on the next healthy upstream.
            raise Closed(f"upstream {url}: {exc}") from None

    def sweep(self, now: float) -> None:
        """The server's once-a-second visit: deadlines, then submits the pool left unanswered."""
        if self.session is None or self.abort_reason is not None:
            return  # still in the preamble, which has a deadline of its own; or ending
        config = self.ctx.config
        limit = config.idle_timeout_s if self.subscribed else config.handshake_timeout_s
        if now - self.miner_seen > limit:
            # also the slowloris defence: bytes without a newline don't count
            self._abort(f"miner sent no complete line for {limit:.0f}s")
            return
        if now - self.upstream_seen > config.idle_timeout_s and self.upstream_writer:
            self.upstream_writer.close()  # the upstream loop reports it as lost
        out = Outbox()
        self.session.expire(now, out)
        try:
            self._deliver_now(out)
        except Closed as exc:
            self._abort(str(exc))

    def _abort(self, reason: str) -> None:
        self.abort_reason = reason
        self.writer.close()  # the miner loop ends; run() reports this reason

    async def _deliver(self, out: Outbox) -> None:
        self._deliver_now(out)
        if self.upstream_writer is not None and out.to_upstream:
            await self.upstream_writer.drain()

    def _deliver_now(self, out: Outbox) -> None:
        if out.to_upstream and self.upstream_writer is not None:
            _write(self.upstream_writer, b"".join(out.to_upstream), "upstream")
        if out.to_miner:
            self._write_miner(out.to_miner)
        self._account(out.events)

    def _account(self, events: list[ShareEvent]) -> None:
        metrics = self.ctx.metrics
        for event in events:
            self.ctx.spool.append(event)  # never blocks: drops and counts when full
            metrics.share(event.error_code)
            if event.accepted:
                metrics.accepted_work(event.worker, event.difficulty)
            if event.responded_at is not None:
                metrics.upstream_rtt.observe((event.responded_at - event.submitted_at) / 1e6)

    def _write_miner(self, lines: list[bytes]) -> None:
        if self.writer.transport.get_write_buffer_size() > _MAX_OUTBOUND:
            raise Closed("miner stopped reading")
        _write(self.writer, b"".join(lines), "miner")

    async def send_reconnect(self) -> None:
        """Shutdown: ask the miner to come back (to another pod behind the Service)."""
        with contextlib.suppress(Exception):
            self.writer.write(b'{"id":null,"method":"client.reconnect","params":[]}\n')
            await asyncio.wait_for(self.writer.drain(), 1)

    async def _finish(self) -> None:
        if self.session is not None and self.session.pending:
            # Shares still in flight when the connection ends never got a verdict.
            out = Outbox()
            self.session.upstream_lost("connection closed before the pool answered", out)
            self._account(out.events)
            with contextlib.suppress(Closed, OSError, RuntimeError):
                self._write_miner(out.to_miner)  # if the miner is still there, it hears why
        for w in (self.writer, self.upstream_writer):
            if w is not None:
                w.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(w.wait_closed(), 2)
