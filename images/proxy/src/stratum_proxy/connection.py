"""The I/O of one miner connection: its socket, its upstream socket, and its timers.

The pool is dialled only once the miner has sent a ``mining.subscribe`` or a
``mining.configure`` (``opening``); a failure to dial that is this machine's own (out of
file descriptors) marks no pool failed.

Everything the protocol decides is in ``session``; this module only moves lines, applies
the limits that keep one hostile client from hurting the others (line length, idle and
handshake deadlines, protocol-error budget, outbound buffer), and hands finished shares
to the spool.

Two rules hold here:

- **Durable before told.** Output for the miner that carries a verdict waits until the
  spool has written that share's event (``SpoolProducer.when_written``); everything after
  it for the same miner waits behind it, so the miner's stream keeps its order.
- **The pool's verdict is recorded whatever the miner does.** A miner that closes,
  resets or stops reading ends only the miner side: the upstream side stays until the
  pool has answered every share in flight (or the submit timeout has), and nothing a
  miner does marks an upstream failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from sharelog.event import ShareEvent
from sharelog.spool import SpoolProducer
from stratum_proxy.closing import Closed, CloseReason, Side, stream_failure
from stratum_proxy.config import ProxyConfig
from stratum_proxy.lines import preamble, read_line
from stratum_proxy.messages import ProtocolError, Request, parse
from stratum_proxy.metrics import ProxyMetrics
from stratum_proxy.opening import Opening
from stratum_proxy.session import MinerSession, Outbox, SessionSettings
from stratum_proxy.upstream import LocalResources, NoUpstream, UpstreamPool

log = logging.getLogger("stratum_proxy.connection")

# a miner that stops reading is cut off past this much backlog beyond the kernel's socket
# buffer; an honest miner's answers and jobs are a few KB between two reads
_MAX_OUTBOUND = 64 << 10
_OPENING_LINES = 16  # requests held before the first subscribe or configure
_DRAIN_MARGIN_S = 2.0  # past the submit timeout, when the sweep has expired what is left


@dataclass
class ProxyContext:
    config: ProxyConfig
    settings: SessionSettings
    pools: dict[str, UpstreamPool]  # "" is the default list; others are CONNECT routes
    spool: SpoolProducer
    metrics: ProxyMetrics
    stopping: asyncio.Event


class MinerConnection:
    __slots__ = (
        "_held",
        "_settled",
        "_upstream_ended",
        "_waiting_for",
        "ctx",
        "miner_gone",
        "miner_seen",
        "protocol_errors",
        "reader",
        "session",
        "subscribed",
        "upstream_seen",
        "upstream_writer",
        "writer",
    )  # fmt: skip

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
        self.miner_gone: Closed | None = None  # set once the miner side has ended
        self._upstream_ended: Closed | None = None  # set when we end the upstream side
        self._settled: asyncio.Event | None = None  # made once the miner has gone
        # output held behind a spool write, with the write generation it needs (0: none of
        # its own, only its place in line); a list, as in replies.py (memory per miner)
        self._held: list[tuple[int, list[bytes]]] = []
        self._waiting_for = 0  # the spool generation our release callback is registered for

    async def run(self) -> Closed:
        """Serve until the miner or the upstream goes; return why."""
        try:
            route, held = await self._opening()
            pool = self.ctx.pools[route]
            up_reader, url = await self._dial(pool)
            self.session = MinerSession(self.ctx.settings, url)
            return await self._serve(held, up_reader, pool, url)
        except Closed as exc:
            return exc
        finally:
            await self._finish()

    async def _opening(self) -> tuple[str, list[bytes]]:
        """Read until the miner asks to mine (opening.py); the route and the lines held."""
        config = self.ctx.config
        opening = Opening(max_held=_OPENING_LINES, max_held_bytes=config.max_line_bytes,
                          max_errors=config.max_protocol_errors)  # fmt: skip
        try:
            async with asyncio.timeout(config.handshake_timeout_s):
                route, line = await preamble(self.reader, self.writer, self.ctx.pools)
                while True:
                    if line is not None:
                        answer = opening.take(line)
                        if answer is not None:
                            self._to_miner([answer], durable=False)
                        for reason in opening.refused:
                            self.ctx.metrics.refusal(reason)
                        opening.refused.clear()
                        if self.miner_gone is not None:
                            raise self.miner_gone
                        if opening.dial:
                            break
                    line = await read_line(self.reader, Side.MINER)
        except TimeoutError:
            raise opening.deadline_passed(config.handshake_timeout_s) from None
        self.protocol_errors = opening.protocol_errors
        return route, opening.held

    async def _dial(self, pool: UpstreamPool) -> tuple[asyncio.StreamReader, str]:
        """Connect to the pool; a failure of this machine's (no file descriptor left) is
        not the pool's, and marks nothing failed."""
        try:
            up_reader, up_writer, url = await pool.connect(self.ctx.config.max_line_bytes)
        except LocalResources as exc:
            raise Closed(CloseReason.LOCAL_RESOURCES, str(exc)) from None
        except NoUpstream as exc:
            self.ctx.metrics.upstream_reconnects.inc()
            raise Closed(CloseReason.NO_UPSTREAM, str(exc)) from None
        self.upstream_writer = up_writer
        self.miner_seen = self.upstream_seen = time.monotonic()
        return up_reader, url

    async def _serve(self, held: list[bytes], up_reader: asyncio.StreamReader,
                     pool: UpstreamPool, url: str) -> Closed:  # fmt: skip
        miner = asyncio.create_task(self._miner_loop(held))
        upstream = asyncio.create_task(self._upstream_loop(up_reader, pool, url))
        try:
            await asyncio.wait([miner, upstream], return_when=asyncio.FIRST_COMPLETED)
            if upstream.done():
                return self._outcome(upstream)
            self._end_miner(self._outcome(miner))
            # The miner has gone: stay for the pool's verdicts on what is in flight. The
            # sweep expires them at the submit timeout, so this wait always ends.
            self._settled = asyncio.Event()
            self._check_settled()
            settled = asyncio.create_task(self._settled.wait())
            limit = self.ctx.settings.submit_timeout + _DRAIN_MARGIN_S
            await asyncio.wait([settled, upstream], timeout=limit,
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            settled.cancel()
            assert self.miner_gone is not None
            return self.miner_gone
        finally:
            for task in (miner, upstream):
                task.cancel()
            await asyncio.gather(miner, upstream, return_exceptions=True)

    def _outcome(self, task: asyncio.Task[None]) -> Closed:
        if task.cancelled():
            return Closed(CloseReason.SHUTDOWN)
        failure = task.exception()
        if isinstance(failure, Closed):
            return failure
        log.error("connection failed", exc_info=failure)
        return Closed(CloseReason.INTERNAL_ERROR, type(failure).__name__)

    # -- the miner side -------------------------------------------------------------------

    async def _miner_loop(self, held: list[bytes]) -> None:
        for line in held:  # what came before the pool was dialled, in its order
            self._from_miner(line)
        while self.miner_gone is None:
            line = await read_line(self.reader, Side.MINER)
            self.miner_seen = time.monotonic()
            if line:
                self._from_miner(line)
                if self.upstream_writer is not None:
                    # backpressure from the pool; a lost pool is the upstream loop's to report
                    with contextlib.suppress(ConnectionError, OSError):
                        await self.upstream_writer.drain()
        raise self.miner_gone

    def _from_miner(self, line: bytes) -> None:
        assert self.session is not None
        out = Outbox()
        try:
            msg = parse(line)
        except ProtocolError as exc:
            out.protocol_errors += 1
            self.session.answer_now(exc.response(), out)
        else:
            if isinstance(msg, Request):
                self.ctx.metrics.request(msg.method)
                if msg.method == "mining.subscribe":
                    self.subscribed = True
            self.session.from_miner(msg, line + b"\n", out)
        self._deliver(out)
        if out.protocol_errors:
            self.protocol_errors += out.protocol_errors
            self.ctx.metrics.protocol_errors.inc(out.protocol_errors)
            if self.protocol_errors >= self.ctx.config.max_protocol_errors:
                raise Closed(CloseReason.MINER_INVALID_LINES, f"{self.protocol_errors} lines")
        if out.close is not None:
            raise Closed(out.close)

    def _end_miner(self, why: Closed) -> None:
        """The miner side is over: nothing more is read from or written to it."""
        if self.miner_gone is None:
            self.miner_gone = why
            self._held.clear()
            self.writer.close()

    # -- the upstream side ----------------------------------------------------------------

    async def _upstream_loop(
        self, reader: asyncio.StreamReader, pool: UpstreamPool, url: str
    ) -> None:
        assert self.session is not None
        try:
            while True:
                line = await read_line(reader, Side.UPSTREAM)
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
                self._deliver(out)
                self._check_settled()
        except Closed as exc:
            why = self._upstream_ended or exc
            if why.side is Side.UPSTREAM and not self.ctx.stopping.is_set():
                pool.mark_failed(url, str(why))
                self.ctx.metrics.upstream_reconnects.inc()
            out = Outbox()
            self.session.upstream_lost(f"upstream lost: {why.reason.value}", out)
            self._deliver(out)
            # The miner reconnects and lands on the next healthy upstream.
            raise why from None

    def _check_settled(self) -> None:
        session, settled = self.session, self._settled
        if settled is not None and session is not None and not session.submits_pending:
            settled.set()

    def _end_upstream(self, why: Closed) -> None:
        if self.upstream_writer is not None and self._upstream_ended is None:
            self._upstream_ended = why
            self.upstream_writer.close()  # the upstream loop ends, with this reason

    # -- time -----------------------------------------------------------------------------

    def sweep(self, now: float) -> None:
        """The server's once-a-second visit: deadlines, then submits the pool left unanswered."""
        if self.session is None:
            return  # still in the preamble, which has a deadline of its own
        config = self.ctx.config
        limit = config.idle_timeout_s if self.subscribed else config.handshake_timeout_s
        if self.miner_gone is None and now - self.miner_seen > limit:
            # also the slowloris defence: bytes without a newline don't count
            self._end_miner(Closed(CloseReason.MINER_SILENT, f"no complete line for {limit:.0f}s"))
        if now - self.upstream_seen > config.idle_timeout_s:
            self._end_upstream(Closed(CloseReason.UPSTREAM_SILENT))
        out = Outbox()
        self.session.expire(now, out)
        self._deliver(out)
        self._check_settled()

    def end(self, why: Closed) -> None:
        """End both sides now (shutdown past its grace): in-flight shares are recorded lost."""
        self._end_miner(why)
        self._end_upstream(why)

    # -- output ---------------------------------------------------------------------------

    def _deliver(self, out: Outbox) -> None:
        upstream = self.upstream_writer
        # A closing upstream: its loop is ending the connection and records what's in flight.
        if out.to_upstream and upstream is not None and not upstream.transport.is_closing():
            upstream.write(b"".join(out.to_upstream))
        if out.events:
            self._account(out.events)
        for reason in out.refused:
            self.ctx.metrics.refusal(reason)
        if out.to_miner:
            self._to_miner(out.to_miner, durable=bool(out.events))

    def _account(self, events: list[ShareEvent]) -> None:
        metrics, spool = self.ctx.metrics, self.ctx.spool
        for event in events:
            spool.append(event)  # never blocks: drops and counts when full
            metrics.share(event.error_code)
            if event.accepted:
                metrics.accepted_work(event.worker, event.difficulty)
            if event.responded_at is not None:
                metrics.upstream_rtt.observe((event.responded_at - event.submitted_at) / 1e6)

    def _to_miner(self, lines: list[bytes], *, durable: bool) -> None:
        """Send now, or behind the spool write that the verdicts among them wait for."""
        if self.miner_gone is not None:
            return
        if not durable and not self._held:
            self._write_miner(b"".join(lines))
            return
        spool = self.ctx.spool
        needs = spool.pending_generation if durable else 0
        self._held.append((needs, lines))
        if durable and needs != self._waiting_for:
            self._waiting_for = spool.when_written(self._release_held)

    def _release_held(self) -> None:
        written = self.ctx.spool.written_generation
        data: list[bytes] = []
        released = 0
        for needs, lines in self._held:
            if needs > written:
                break
            data += lines
            released += 1
        del self._held[:released]
        if data and self.miner_gone is None:
            self._write_miner(b"".join(data))

    def _write_miner(self, data: bytes) -> None:
        """Write to the miner; a miner that has gone or stopped reading ends its side only."""
        transport = self.writer.transport
        if transport.is_closing():
            self._end_miner(Closed(CloseReason.MINER_CLOSED))
        elif transport.get_write_buffer_size() > _MAX_OUTBOUND:
            self._end_miner(Closed(CloseReason.MINER_NOT_READING))
        else:
            try:
                self.writer.write(data)
            except (OSError, RuntimeError) as exc:  # uvloop: RuntimeError on a closed transport
                self._end_miner(stream_failure(Side.MINER, exc))

    async def send_reconnect(self) -> None:
        """Shutdown: ask the miner to come back (to another pod behind the Service)."""
        self._to_miner([b'{"id":null,"method":"client.reconnect","params":[]}\n'], durable=False)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.drain(), 1)

    async def _finish(self) -> None:
        if self.session is not None and self.session.pending:
            # Requests still in flight when the connection ends never got a verdict.
            out = Outbox()
            self.session.upstream_lost("connection closed before the pool answered", out)
            self._deliver(out)
        if self._held and self.miner_gone is None:
            # what the miner is still owed leaves once the spool has it (then released by
            # the callback registered for it, which runs before this future's waiter)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.ctx.spool.written(), 2)
        for w in (self.writer, self.upstream_writer):
            if w is not None:
                w.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(w.wait_closed(), 2)
