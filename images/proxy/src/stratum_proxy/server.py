"""Accepting miners: admission, TLS, and a graceful shutdown.

The proxy accepts sockets itself, so it sees each connection before a byte of it is
read or any TLS handshake begins: ``admission`` refuses it at the door (shutting down,
connection limits, the per-address rate) at the cost of an accept and a reset. Only an
admitted socket becomes a transport, over TLS on a TLS port, with the handshake bounded
by the handshake deadline. (A plain transport upgraded later would already be reading,
and could swallow the ClientHello.)

Accepting can fail for want of file descriptors: that is this machine's shortage, logged
and retried after a pause, and never anything a pool is blamed for.

On SIGTERM the listener closes first (the Service stops sending new miners), every
miner is asked to reconnect (``client.reconnect``: it comes back to another pod), the
connections get the grace period to finish, those still open are ended (their shares in
flight recorded as lost), and the spool is flushed and fsynced. Connections are ended,
never cancelled, so a lingering miner costs a log line, not a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import struct
import time

from stratum_proxy.closing import Closed, CloseReason
from stratum_proxy.connection import MinerConnection, ProxyContext
from stratum_proxy.connection_limits import Admission

log = logging.getLogger("stratum_proxy.server")

_ACCEPT_RETRY_S = 0.5  # after accept(2) failed for want of descriptors or memory
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close(2) sends a reset


def _listener(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=4096)
    sock.setblocking(False)
    return sock


class ProxyServer:
    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self.connections: set[MinerConnection] = set()
        config = ctx.config
        self.admission = Admission(config.max_connections, config.max_connections_per_ip,
                                   config.max_new_connections_per_ip_per_s)  # fmt: skip
        self._tls: ssl.SSLContext | None = None
        self._listener: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int) -> int:
        config = self.ctx.config
        if config.tls_cert_file and config.tls_key_file:
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(config.tls_cert_file, config.tls_key_file)
        self._listener = _listener(host, port)
        self._acceptor = asyncio.create_task(self._accept_loop(self._listener))
        self._sweeper = asyncio.create_task(self._sweep_loop())
        return int(self._listener.getsockname()[1])

    async def _sweep_loop(self) -> None:
        """Deadlines and submit timeouts for every connection, from one task."""
        tick = min(1.0, self.ctx.config.handshake_timeout_s / 3)
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            self.admission.forget_idle(now)
            for conn in list(self.connections):
                try:
                    conn.sweep(now)
                except Exception:
                    log.exception("sweeping a connection failed; it is closed")
                    conn.end(Closed(CloseReason.INTERNAL_ERROR, "sweep failed"))

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, peer = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue  # the peer gave up while still in the backlog
                # out of descriptors or memory (LOCAL_ERRNOS), or stranger: ours, not a pool's
                log.warning("cannot accept miners (%s); again in %.1fs", exc, _ACCEPT_RETRY_S)
                await asyncio.sleep(_ACCEPT_RETRY_S)
                continue
            self._door(sock, str(peer[0]) if peer else "?")

    def _door(self, sock: socket.socket, ip: str) -> None:
        """Admit or refuse, before anything is read from the socket."""
        refused = self.admission.admit(ip, time.monotonic(), stopping=self.ctx.stopping.is_set())
        if refused is not None:
            self.ctx.metrics.refused.labels(refused.value).inc()
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            sock.close()
            return
        task = asyncio.create_task(self._admitted(sock, ip))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _admitted(self, sock: socket.socket, ip: str) -> None:
        metrics = self.ctx.metrics
        metrics.connections.inc()
        metrics.connections_total.inc()
        try:
            streams = await self._streams(sock)
            why = streams if isinstance(streams, Closed) else await self._serve(*streams)
            metrics.closed.labels(why.reason.value).inc()
            level = logging.WARNING if why.reason.worth_a_warning else logging.DEBUG
            log.log(level, "miner %s disconnected: %s", ip, why)
        except asyncio.CancelledError:
            # Only our own shutdown cancels, past every grace: not an error to print.
            metrics.closed.labels(CloseReason.SHUTDOWN.value).inc()
        finally:
            self.admission.left(ip)
            metrics.connections.dec()

    async def _streams(
        self, sock: socket.socket
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | Closed:
        """The socket as streams: over TLS on a TLS port, once its handshake is done
        (within the handshake deadline); why not, when it failed."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.ctx.config.max_line_bytes)
        try:
            transport, protocol = await loop.connect_accepted_socket(
                lambda: asyncio.StreamReaderProtocol(reader), sock, ssl=self._tls,
                ssl_handshake_timeout=self.ctx.config.handshake_timeout_s if self._tls else None,
            )  # fmt: skip
        except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
            sock.close()
            if self._tls is None:
                return Closed(CloseReason.MINER_RESET, str(exc) or type(exc).__name__)
            return Closed(CloseReason.MINER_TLS_FAILED, str(exc) or type(exc).__name__)
        if self._tls is not None:
            self.ctx.metrics.tls_handshakes.inc()
        return reader, asyncio.StreamWriter(transport, protocol, reader, loop)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Closed:
        conn = MinerConnection(reader, writer, self.ctx)
        self.connections.add(conn)
        try:
            return await conn.run()
        finally:
            self.connections.discard(conn)

    async def shutdown(self, grace: float) -> None:
        self.ctx.stopping.set()
        if self._acceptor is not None:
            self._acceptor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._acceptor
        if self._listener is not None:
            self._listener.close()
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
