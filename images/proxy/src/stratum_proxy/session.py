"""One miner's session: what to relay, what to answer, and the fate of every share.

Pure state, no I/O (the connection module owns the sockets): each input, a miner line
or an upstream line or the passing of time, goes in, and an Outbox of bytes for either
side plus finished share events comes out. That keeps every protocol rule testable
without a network.

Request ids: every request the proxy sends upstream gets an id of the proxy's own, and
the reply is mapped back to the miner's id. Replies leave in the order the requests came
(``replies``), whoever answered them, so miners that reuse ids (some send every submit
as id 4) or send none (``"id": null``) never get a verdict meant for another share.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sharelog.event import ShareEvent, Verdict, clip
from sharelog.work import Job
from stratum_proxy.closing import CloseReason
from stratum_proxy.messages import (
    JsonId,
    Message,
    Request,
    Response,
    encode_request,
    encode_response,
    error_code,
    stratum_error,
)
from stratum_proxy.replies import ReplyQueue, ReplySlot
from stratum_proxy.shares import Share, is_hex, split_login, submit_params_problem


@dataclass(frozen=True, slots=True)
class SessionSettings:
    pool: str
    proxy_instance: str
    upstream_account: str | None = None  # rewrite logins to this pool account
    upstream_password: str = "x"  # noqa: S105 - Stratum convention, not a secret
    local_reject: bool = True  # answer duplicate and low-difficulty shares ourselves
    submit_timeout: float = 30.0
    max_pending: int = 256  # requests waiting for the pool
    max_waiting_replies: int = 256  # answers held back behind an unanswered request
    max_jobs: int = 32
    max_seen: int = 200_000


@dataclass(slots=True)
class Outbox:
    to_miner: list[bytes] = field(default_factory=list)
    to_upstream: list[bytes] = field(default_factory=list)
    events: list[ShareEvent] = field(default_factory=list)
    protocol_errors: int = 0  # lines that were not valid Stratum, against the error budget
    close: CloseReason | None = None  # the session asks the connection to end


@dataclass(slots=True)
class _Pending:
    method: str
    slot: ReplySlot
    sent_at: float
    miner_id: JsonId
    share: Share | None = None
    login: str | None = None


class MinerSession:
    __slots__ = ("_event_fields", "_next_id", "_subscribing", "accepted", "authorized",
                 "difficulty", "extranonce1", "extranonce2_size", "jobs", "pending",
                 "rejected", "replies", "seen", "settings", "upstream", "version_mask")  # fmt: skip

    def __init__(self, settings: SessionSettings, upstream: str) -> None:
        self.settings = settings
        self.upstream = upstream
        self.extranonce1: str | None = None
        self.extranonce2_size: int | None = None
        self.version_mask = 0
        self.difficulty = 1.0  # the latest mining.set_difficulty
        self.jobs: OrderedDict[str, tuple[Job, float]] = OrderedDict()  # job -> (job, diff)
        self.authorized: dict[str, str] = {}  # miner login -> upstream login
        self.seen: set[tuple[str, ...]] = set()
        self.pending: dict[int, _Pending] = {}
        self.replies = ReplyQueue()
        self._next_id = 1
        self._subscribing = 0  # subscribes sent and not answered: extranonce1 may change
        self._event_fields = (
            clip("pool", settings.pool),
            clip("upstream", upstream),
            clip("proxy_instance", settings.proxy_instance),
        )
        self.accepted = 0
        self.rejected = 0

    @property
    def submits_pending(self) -> int:
        return sum(1 for p in self.pending.values() if p.share is not None)

    # -- miner -> proxy -------------------------------------------------------------------

    def from_miner(self, msg: Message, raw: bytes, out: Outbox) -> None:
        if isinstance(msg, Response):  # an answer to a request the pool sent the miner
            out.to_upstream.append(raw)
            return
        if msg.id is None and msg.method != "mining.submit":
            out.to_upstream.append(raw)  # a notification: nothing comes back
            return
        if len(self.replies) >= self.settings.max_waiting_replies:
            out.close = CloseReason.MINER_FLOODING
            if msg.method == "mining.submit" and submit_params_problem(msg.params) is None:
                share = self._share(msg.params)
                self._record(share, False, Verdict.OTHER, "too many requests in flight", out)
            return
        slot = self.replies.reserve()
        if msg.method == "mining.submit":
            self._submit(msg, slot, out)  # over the in-flight limit too: its fate is recorded
            return
        if len(self.pending) >= self.settings.max_pending:
            self._answer(slot, msg.id, None, stratum_error(20, "too many requests in flight"), out)
            return
        params = msg.params
        pending = _Pending(msg.method, slot, time.monotonic(), msg.id)
        if msg.method == "mining.authorize":
            params, pending.login = self._authorize_params(params)
        elif msg.method == "mining.subscribe":
            self._subscribing += 1
        self._send_upstream(msg.method, params, pending, out)

    def answer_now(self, reply: bytes, out: Outbox) -> None:
        """An answer the connection made (a line that was not Stratum), in its place in line."""
        self.replies.answer(self.replies.reserve(), reply, out.to_miner)

    def _answer(self, slot: ReplySlot, miner_id: JsonId, result: Any, error: Any,
                out: Outbox) -> None:  # fmt: skip
        self.replies.answer(slot, encode_response(miner_id, result, error), out.to_miner)

    def _authorize_params(self, params: list[Any]) -> tuple[list[Any], str | None]:
        login = params[0] if params and isinstance(params[0], str) else None
        if login is None or self.settings.upstream_account is None:
            return params, login
        _, rig = split_login(login)
        upstream_login = (
            f"{self.settings.upstream_account}.{rig}" if rig else self.settings.upstream_account
        )
        return [upstream_login, self.settings.upstream_password], login

    def _send_upstream(
        self, method: str, params: list[Any], pending: _Pending, out: Outbox
    ) -> None:
        upstream_id = self._next_id
        self._next_id += 1
        self.pending[upstream_id] = pending
        out.to_upstream.append(encode_request(upstream_id, method, params))

    def _share(self, params: list[Any]) -> Share:
        entry = self.jobs.get(params[1])
        job, difficulty = entry if entry is not None else (None, self.difficulty)
        share = Share.from_params(params, job, difficulty)
        if not self._subscribing and self.extranonce1 is not None:
            share.identify(self.extranonce1, self.version_mask)
        return share  # otherwise deferred: identified when its verdict is recorded

    def _submit(self, msg: Request, slot: ReplySlot, out: Outbox) -> None:
        problem = submit_params_problem(msg.params)
        if problem is not None:
            out.protocol_errors += 1
            self._answer(slot, msg.id, None, stratum_error(20, f"malformed submit: {problem}"),
                         out)  # fmt: skip
            return
        share = self._share(msg.params)
        solution = share.solution(self.extranonce1)
        duplicate = solution in self.seen
        if not duplicate:
            if len(self.seen) >= self.settings.max_seen:
                self.seen.clear()  # bounded memory; jobs this old are stale anyway
            self.seen.add(solution)
        login = msg.params[0]
        local = self._local_verdict(share, login, duplicate)
        if local is not None:
            code, message = local
            self._record(share, False, code, f"{message} (answered by proxy)", out)
            self._answer(slot, msg.id, None, stratum_error(code, message), out)
            return
        params = list(msg.params)
        upstream_login = self.authorized.get(login)
        if upstream_login is not None:
            params[0] = upstream_login
        pending = _Pending("mining.submit", slot, time.monotonic(), msg.id, share)
        self._send_upstream("mining.submit", params, pending, out)

    def _local_verdict(self, share: Share, login: str, duplicate: bool) -> tuple[int, str] | None:
        if len(self.pending) >= self.settings.max_pending:
            # The pool is this far behind; relaying more only deepens the backlog.
            return Verdict.OTHER, "too many submits in flight"
        if not self.settings.local_reject:
            return None
        # A subscribe or authorize still in flight is the pool's to answer first: it
        # judges this share after them, so the proxy can't know better.
        if self.extranonce1 is None and not self._subscribing:
            return Verdict.NOT_SUBSCRIBED, "not subscribed"
        if login not in self.authorized and not self._authorizing(login):
            return Verdict.UNAUTHORIZED, "unauthorized worker"
        if share.job is None:
            return Verdict.STALE, "job not found"
        if duplicate:
            return Verdict.DUPLICATE, "duplicate share"
        if not share.deferred and share.share_difficulty < share.difficulty:
            return Verdict.LOW_DIFFICULTY, "low difficulty share"
        return None

    def _authorizing(self, login: str) -> bool:
        """An authorize for ``login`` is in flight (rare: scanned, not indexed)."""
        return any(p.login == login for p in self.pending.values())

    # -- upstream -> proxy ----------------------------------------------------------------

    def from_upstream(self, msg: Message, raw: bytes, out: Outbox) -> None:
        if isinstance(msg, Request):
            self._upstream_request(msg, raw, out)
            return
        if not isinstance(msg.id, int) or msg.id not in self.pending:
            return  # a reply to a request that timed out, or to nothing we sent
        pending = self.pending.pop(msg.id)
        if pending.method == "mining.subscribe":
            self._subscribing -= 1
            if isinstance(msg.result, list):
                self._subscribed(msg.result)
        elif pending.method == "mining.configure" and isinstance(msg.result, dict):
            mask = msg.result.get("version-rolling.mask")
            if msg.result.get("version-rolling") and is_hex(mask, 8):
                self.version_mask = int(str(mask), 16)
        elif pending.method == "mining.authorize" and pending.login and msg.result is True:
            account = self._authorize_params([pending.login])[0][0]
            self.authorized[pending.login] = account
        elif pending.share is not None:
            if msg.result is True and msg.error is None:
                self._record(pending.share, True, None, None, out)
            else:
                code, message = error_code(msg.error)
                self._record(pending.share, False, code, message or "rejected", out)
        self._answer(pending.slot, pending.miner_id, msg.result, msg.error, out)

    def _subscribed(self, result: list[Any]) -> None:
        if len(result) >= 3 and is_hex(result[1]) and isinstance(result[2], int):
            self.extranonce1 = result[1]
            self.extranonce2_size = result[2]

    def _upstream_request(self, msg: Request, raw: bytes, out: Outbox) -> None:
        method, params = msg.method, msg.params
        if method == "mining.notify":
            try:
                job = Job.from_notify(params)
            except ValueError:
                job = None
            if job is not None:
                if job.clean_jobs:
                    self.jobs.clear()
                self.jobs[job.job_id] = (job, self.difficulty)
                while len(self.jobs) > self.settings.max_jobs:
                    self.jobs.popitem(last=False)
        elif method == "mining.set_difficulty" and params:
            value = params[0]
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                self.difficulty = float(value)
        elif (
            method == "mining.set_extranonce"
            and len(params) >= 2
            and is_hex(params[0])
            and isinstance(params[1], int)
        ):
            self.extranonce1, self.extranonce2_size = params[0], params[1]
        out.to_miner.append(raw)  # relayed untouched, known method or not

    # -- time and loss --------------------------------------------------------------------

    def expire(self, now: float, out: Outbox) -> None:
        """Answer requests the pool left unanswered past the submit timeout."""
        limit = self.settings.submit_timeout
        for upstream_id, pending in list(self.pending.items()):
            if now - pending.sent_at >= limit:
                del self.pending[upstream_id]
                self._unanswered(pending, Verdict.TIMEOUT, "upstream did not answer in time",
                                 out)  # fmt: skip

    def upstream_lost(self, reason: str, out: Outbox) -> None:
        """The pool connection died: in-flight shares were never confirmed."""
        pending, self.pending = list(self.pending.values()), {}
        for p in pending:
            self._unanswered(p, Verdict.UPSTREAM_LOST, reason, out)

    def _unanswered(self, pending: _Pending, verdict: Verdict, why: str, out: Outbox) -> None:
        if pending.method == "mining.subscribe":
            self._subscribing -= 1
        if pending.share is not None:
            self._record(pending.share, False, verdict, why, out)
        short = "upstream lost" if verdict is Verdict.UPSTREAM_LOST else why
        self._answer(pending.slot, pending.miner_id, None, stratum_error(20, short), out)

    # -- recording ------------------------------------------------------------------------

    def _record(
        self, share: Share, accepted: bool, code: int | None, message: str | None, out: Outbox
    ) -> None:
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1
        if share.deferred:
            share.identify(self.extranonce1, self.version_mask)
        pool, upstream, instance = self._event_fields
        out.events.append(share.event(pool=pool, upstream=upstream, proxy_instance=instance,
                                      accepted=accepted, code=code, message=message))  # fmt: skip
