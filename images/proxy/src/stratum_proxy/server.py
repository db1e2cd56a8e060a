"""Accepting miners: connection limits, TLS, and a graceful shutdown.

On SIGTERM the listener closes first (the Service stops sending new miners), every
miner is asked to reconnect (``client.reconnect``: it comes back to another pod), the
connections get the grace period to finish, those still open are ended (their shares in
flight recorded as lost), and the spool is flushed and fsynced. Connections are ended,
never cancelled, so a lingering miner costs a log line, not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter

from stratum_proxy.closing import Closed, CloseReason
from stratum_proxy.connection import MinerConnection, ProxyContext

log = logging.getLogger("stratum_proxy.server")


class ProxyServer:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.connections: set[MinerConnection] = set()
        self.per_ip: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        config = self.ctx.config
        tls = None
        if config.tls_cert_file and config.tls_key_file:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(config.tls_cert_file, config.tls_key_file)
        self._server = await asyncio.start_server(
            self._accept, host, port, limit=config.max_line_bytes, ssl=tls, backlog=4096
        )
        self._sweeper = asyncio.create_task(self._sweep_loop())
        return int(self._server.sockets[0].getsockname()[1])

    async def _sweep_loop(self) -> None:
        """Deadlines and submit timeouts for every connection, from one task."""
        tick = min(1.0, self.ctx.config.handshake_timeout_s / 3)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for conn in list(self.connections):
                try:
                    conn.sweep(now)
                except Exception:
                    log.exception("sweeping a connection failed; it is closed")
                    conn.end(Closed(CloseReason.INTERNAL_ERROR, "sweep failed"))

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = str(peer[0]) if peer else "?"
        config, metrics = self.ctx.config, self.ctx.metrics
        if self.ctx.stopping.is_set():
            reason = "shutting down"
        elif len(self.connections) >= config.max_connections:
            reason = "connection limit"
        elif self.per_ip[ip] >= config.max_connections_per_ip:
            reason = "per-IP connection limit"
        else:
            reason = ""
        if reason:
            metrics.refused.labels(reason).inc()
            writer.close()
            return
        conn = MinerConnection(reader, writer, self.ctx)
        self.connections.add(conn)
        self.per_ip[ip] += 1
        metrics.connections.inc()
        metrics.connections_total.inc()
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            why = await conn.run()
            metrics.closed.labels(why.reason.value).inc()
            level = logging.WARNING if why.reason.worth_a_warning else logging.DEBUG
            log.log(level, "miner %s disconnected: %s", ip, why)
        except asyncio.CancelledError:
            # Only our own shutdown cancels, past every grace: not an error to print. The
            # task ends normally so asyncio's stream callback has nothing to report.
            metrics.closed.labels(CloseReason.SHUTDOWN.value).inc()
        finally:
            self.connections.discard(conn)
            self.per_ip[ip] -= 1
            if self.per_ip[ip] <= 0:
                del self.per_ip[ip]
            metrics.connections.dec()
            if task is not None:
                self._tasks.discard(task)

    async def shutdown(self, grace: float) -> None:
        self.ctx.stopping.set()
        if self._server is not None:
            self._server.close()
        log.info("stopping: asking %d miners to reconnect", len(self.connections))
        await asyncio.gather(*(c.send_reconnect() for c in list(self.connections)))
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            if pending:
                log.info("grace over: ending %d connections still open", len(pending))
                for conn in list(self.connections):
                    conn.end(Closed(CloseReason.SHUTDOWN))
                _, pending = await asyncio.wait(pending, timeout=5)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(*pending, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            await self._server.wait_closed()
