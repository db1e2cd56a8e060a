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


async def _read_line(reader: asyncio.StreamReader, timeout: float, who: str) -> bytes:  # noqa: ASYNC109 - a per-line deadline, not a call timeout
    try:
        line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
    except asyncio.LimitOverrunError:
        raise Closed(f"{who} sent a line longer than the limit") from None
    except asyncio.IncompleteReadError:
        raise Closed(f"{who} closed the connection") from None
    except TimeoutError:
        raise Closed(f"{who} sent no complete line for {timeout:.0f}s") from None
    except (ConnectionError, OSError) as exc:
        raise Closed(f"{who} connection error: {exc}") from None
    return line.rstrip(b"\r\n")


async def _preamble(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ProxyContext
) -> tuple[str, bytes | None]:
    """Pick the upstream list: an HTTP CONNECT preamble names a route; otherwise default.

    Returns the route name and, without a preamble, the miner's first line to process.
    """
    first = await _read_line(reader, ctx.config.handshake_timeout_s, "miner")
    if not first.startswith(b"CONNECT "):
        return "", first
    parts = first.split()
    name = parts[1].decode(errors="replace") if len(parts) >= 2 else ""
    for _ in range(_PREAMBLE_LINES):  # the rest of the HTTP request head
        if not await _read_line(reader, ctx.config.handshake_timeout_s, "miner"):
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
                asyncio.create_task(self._timer_loop()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
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
            timeout = (
                self.ctx.config.idle_timeout_s if self.subscribed
                else self.ctx.config.handshake_timeout_s
            )  # fmt: skip
            line = await _read_line(self.reader, timeout, "miner")
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
            method = msg.method if msg.method.startswith(("mining.", "client.")) else "other"
            self.ctx.metrics.requests.labels(method[:40]).inc()
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
                line = await _read_line(reader, self.ctx.config.idle_timeout_s, "upstream")
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

    async def _timer_loop(self) -> None:
        assert self.session is not None
        while True:
            await asyncio.sleep(1.0)
            out = Outbox()
            self.session.expire(time.monotonic(), out)
            await self._deliver(out)

    async def _deliver(self, out: Outbox) -> None:
        if out.to_upstream and self.upstream_writer is not None:
            self.upstream_writer.write(b"".join(out.to_upstream))
        if out.to_miner:
            self._write_miner(out.to_miner)
        metrics = self.ctx.metrics
        for event in out.events:
            self.ctx.spool.append(event)  # never blocks: drops and counts when full
            if event.accepted:
                metrics.shares.labels("accepted", "").inc()
                metrics.accepted_work(event.worker, event.difficulty)
            else:
                metrics.shares.labels("rejected", str(event.error_code)).inc()
            if event.responded_at is not None:
                metrics.upstream_rtt.observe((event.responded_at - event.submitted_at) / 1e6)
        if self.upstream_writer is not None and out.to_upstream:
            await self.upstream_writer.drain()

    def _write_miner(self, lines: list[bytes]) -> None:
        transport = self.writer.transport
        if transport.get_write_buffer_size() > _MAX_OUTBOUND:
            raise Closed("miner stopped reading")
        self.writer.write(b"".join(lines))

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
            for event in out.events:
                self.ctx.spool.append(event)
        for w in (self.writer, self.upstream_writer):
            if w is not None:
                w.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(w.wait_closed(), 2)
