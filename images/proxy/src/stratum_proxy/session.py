"""One miner's session: what to relay, what to answer, and the fate of every share.

Pure state, no I/O (the connection module owns the sockets): each input, a miner line
or an upstream line or the passing of time, goes in, and an Outbox of bytes for either
side plus finished share events comes out. That keeps every protocol rule testable
without a network.

Request ids: every request the proxy sends upstream gets an id of the proxy's own, and
the reply is mapped back to the miner's id. Replies leave in the order the requests came
(``replies``), whoever answered them, so miners that reuse ids (some send every submit
as id 4) or send none (``"id": null``) never get a verdict meant for another share.

What is stored: a share from a worker the pool authorized on a subscribed connection,
within the connection's rate (``admission``); anything else is refused, answered and
counted, never stored. A submit that crosses a subscribe, or its worker's authorize, is
held until the pool has answered it, then judged: it then goes up under the login the
pool authorized (``logins``) and is hashed under the extranonce1 the pool judges it by.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sharelog.event import ShareEvent, Verdict, clip
from sharelog.work import Job
from stratum_proxy.admission import (
    Refusal,
    Refused,
    SubmitBudget,
    printable,
    unstorable_submit,
)
from stratum_proxy.closing import CloseReason
from stratum_proxy.jobs import LiveJobs, Seen
from stratum_proxy.logins import authorize_refusal, upstream_login
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
from stratum_proxy.shares import Share, is_hex, submit_params_problem


@dataclass(frozen=True, slots=True)
class SessionSettings:
    pool: str
    proxy_instance: str
    upstream_account: str | None = None  # rewrite logins to this pool account (logins.py)
    upstream_password: str = "x"  # noqa: S105 - Stratum convention, not a secret
    worker_separator: str = "_"  # between the miner's account and rig, upstream
    local_reject: bool = True  # answer duplicate and low-difficulty shares ourselves
    submit_timeout: float = 30.0
    max_submits_per_s: float = 100.0  # per connection, averaged over submit_rate_window
    submit_rate_window: float = 10.0
    max_pending: int = 256  # requests waiting for the pool
    max_waiting_replies: int = 256  # answers held back behind an unanswered request
    max_jobs: int = 32
    max_shares_per_job: int = 4096  # solutions remembered per live job, for duplicates
    max_workers: int = 64  # names authorized (or being authorized) on one connection


@dataclass(slots=True)
class Outbox:
    to_miner: list[bytes] = field(default_factory=list)
    to_upstream: list[bytes] = field(default_factory=list)
    events: list[ShareEvent] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)  # answered, counted, not stored
    protocol_errors: int = 0  # lines that were not valid Stratum, against the error budget
    close: CloseReason | None = None  # the session asks the connection to end


@dataclass(slots=True)
class _Pending:
    method: str
    slot: ReplySlot
    sent_at: float
    miner_id: JsonId
    share: Share | None = None
    login: str | None = None  # an authorize's: the miner's own login


_HOLDING = ("mining.subscribe", "mining.authorize")  # submits wait for their answers


class MinerSession:
    __slots__ = ("_budget", "_event_fields", "_held", "_next_id", "_subscribing",
                 "accepted", "authorized", "difficulty", "extranonce1", "extranonce2_size",
                 "jobs", "pending", "rejected", "replies", "settings", "upstream",
                 "version_mask")  # fmt: skip

    def __init__(self, settings: SessionSettings, upstream: str) -> None:
        self.settings = settings
        self.upstream = upstream
        self.extranonce1: str | None = None
        self.extranonce2_size: int | None = None
        self.version_mask = 0
        self.difficulty = 1.0  # the latest mining.set_difficulty
        self.jobs = LiveJobs(settings.max_jobs)
        self.authorized: dict[str, str] = {}  # miner login -> upstream login
        self.pending: dict[int, _Pending] = {}
        self.replies = ReplyQueue()
        # submits waiting for a subscribe or their worker's authorize to be answered
        self._held: list[tuple[Request, ReplySlot]] = []
        self._budget = SubmitBudget(settings.max_submits_per_s, settings.submit_rate_window,
                                    time.monotonic())  # fmt: skip
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
        if msg.id is None and msg.method not in ("mining.submit", "mining.authorize"):
            out.to_upstream.append(raw)  # a notification: nothing comes back
            return
        if len(self.replies) >= self.settings.max_waiting_replies:
            out.close = CloseReason.MINER_FLOODING
            if msg.method == "mining.submit":
                self._flooded(msg.params, out)
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
            refused = self._authorize_refusal(params)
            if refused is not None:
                self._refuse(slot, msg.id, refused, out)
                return
            pending.login = params[0]
            if self.settings.upstream_account is not None:
                params = [self._upstream_login(params[0]), self.settings.upstream_password]
        elif msg.method == "mining.subscribe":
            self._subscribing += 1
        self._send_upstream(msg.method, params, pending, out)

    def answer_now(self, reply: bytes, out: Outbox) -> None:
        """An answer the connection made (a line that was not Stratum), in its place in line."""
        self.replies.answer(self.replies.reserve(), reply, out.to_miner)

    def _answer(self, slot: ReplySlot, miner_id: JsonId, result: Any, error: Any,
                out: Outbox) -> None:  # fmt: skip
        self.replies.answer(slot, encode_response(miner_id, result, error), out.to_miner)

    def _refuse(self, slot: ReplySlot, miner_id: JsonId, refused: Refused, out: Outbox) -> None:
        out.refused.append(refused.reason)
        self._answer(slot, miner_id, None, refused.error(), out)

    def _authorize_refusal(self, params: list[Any]) -> Refused | None:
        """A name that can't be stored or told apart, or one more than a connection may hold."""
        login = params[0] if params else None
        settings = self.settings
        refused = authorize_refusal(login, settings.upstream_account, settings.worker_separator)
        if refused is not None:
            return refused
        names = self.authorized.keys() | {p.login for p in self.pending.values() if p.login}
        if login not in names and len(names) >= self.settings.max_workers:
            return Refused(Refusal.TOO_MANY_WORKERS, f"at most {self.settings.max_workers}")
        return None

    def _send_upstream(
        self, method: str, params: list[Any], pending: _Pending, out: Outbox
    ) -> None:
        upstream_id = self._next_id
        self._next_id += 1
        self.pending[upstream_id] = pending
        out.to_upstream.append(encode_request(upstream_id, method, params))

    def _upstream_login(self, login: str) -> str:
        return upstream_login(login, self.settings.upstream_account, self.settings.worker_separator)

    def _share(self, params: list[Any]) -> Share:
        live = self.jobs.get(params[1])
        job, difficulty = (live.job, live.difficulty) if live else (None, self.difficulty)
        share = Share.from_params(params, job, difficulty)
        share.identify(self.extranonce1, self.version_mask)
        return share

    def _submit(self, msg: Request, slot: ReplySlot, out: Outbox) -> None:
        problem = submit_params_problem(msg.params)
        if problem is not None:
            out.protocol_errors += 1
            self._answer(slot, msg.id, None, stratum_error(20, f"malformed submit: {problem}"),
                         out)  # fmt: skip
            return
        refused = unstorable_submit(msg.params)  # before it is held: what it holds is small
        if refused is not None:
            self._refuse(slot, msg.id, refused, out)
        elif self._waiting_for_pool(msg.params[0]):
            self._held.append((msg, slot))  # judged once the pool has answered
        else:
            self._judge(msg, slot, out)

    def _waiting_for_pool(self, login: str) -> bool:
        """A subscribe, or this worker's authorize, is in flight: the pool answers it
        first, and only then is it known whom (and under which extranonce1) a share is."""
        if self._subscribing:
            return True
        return login not in self.authorized and any(p.login == login for p in self.pending.values())

    def _unattributed(self, login: str) -> Refused | None:
        """Why a share from ``login`` can't be credited to anyone, or None."""
        if self.extranonce1 is None:
            return Refused(Refusal.NOT_SUBSCRIBED)
        if login not in self.authorized:
            return Refused(Refusal.UNAUTHORIZED)
        return None

    def _judge(self, msg: Request, slot: ReplySlot, out: Outbox) -> None:
        settings = self.settings
        refused = self._unattributed(msg.params[0])
        if refused is None and not self._budget.take(
            settings.max_submits_per_s, settings.submit_rate_window, time.monotonic()
        ):
            refused = Refused(Refusal.RATE_LIMITED)
        if refused is not None:
            self._refuse(slot, msg.id, refused, out)
            return
        share = self._share(msg.params)
        local = self._local_verdict(share)
        if isinstance(local, Refused):
            self._refuse(slot, msg.id, local, out)
        elif local is not None:
            code, message = local
            self._record(share, False, code, f"{message} (answered by proxy)", out)
            self._answer(slot, msg.id, None, stratum_error(code, message), out)
        else:
            params = list(msg.params)
            params[0] = self.authorized[params[0]]
            pending = _Pending("mining.submit", slot, time.monotonic(), msg.id, share)
            self._send_upstream("mining.submit", params, pending, out)

    def _local_verdict(self, share: Share) -> tuple[int, str] | Refused | None:
        if len(self.pending) >= self.settings.max_pending:
            # The pool is this far behind; relaying more only deepens the backlog.
            return Verdict.OTHER, "too many submits in flight"
        if not self.settings.local_reject:
            return None
        live = self.jobs.get(share.job_id)
        if live is None:
            return Verdict.STALE, "job not found"
        seen = live.remember(share.solution(), self.settings.max_shares_per_job)
        if seen is Seen.FULL:
            return Refused(Refusal.JOB_SHARES_FULL, f"at most {self.settings.max_shares_per_job}")
        if seen is Seen.REPEAT:
            return Verdict.DUPLICATE, "duplicate share"
        if share.share_difficulty < share.difficulty:
            return Verdict.LOW_DIFFICULTY, "low difficulty share"
        return None

    def _flooded(self, params: list[Any], out: Outbox) -> None:
        """The connection is cut off: its last submit is recorded only if it is a share."""
        if (
            submit_params_problem(params) is None
            and unstorable_submit(params) is None
            and not self._waiting_for_pool(params[0])
            and self._unattributed(params[0]) is None
        ):
            share = self._share(params)
            self._record(share, False, Verdict.OTHER, "too many requests in flight", out)

    def _release_held(self, out: Outbox) -> None:
        """The pool has answered a subscribe or an authorize: judge what waited for it."""
        held, self._held = self._held, []
        for msg, slot in held:
            if self._waiting_for_pool(msg.params[0]):
                self._held.append((msg, slot))
            else:
                self._judge(msg, slot, out)

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
            self.authorized[pending.login] = self._upstream_login(pending.login)
        elif pending.share is not None:
            if msg.result is True and msg.error is None:
                self._record(pending.share, True, None, None, out)
            else:
                code, message = error_code(msg.error)
                self._record(pending.share, False, code, printable(message) or "rejected", out)
        self._answer(pending.slot, pending.miner_id, msg.result, msg.error, out)
        if self._held and pending.method in _HOLDING:
            self._release_held(out)

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
                self.jobs.add(job, self.difficulty)
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
        if self._held:
            self._release_held(out)

    def upstream_lost(self, reason: str, out: Outbox) -> None:
        """The pool connection died: in-flight shares were never confirmed."""
        pending, self.pending = list(self.pending.values()), {}
        for p in pending:
            self._unanswered(p, Verdict.UPSTREAM_LOST, reason, out)
        if self._held:
            self._release_held(out)  # refused or relayed: the connection records what's sent

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
        pool, upstream, instance = self._event_fields
        out.events.append(share.event(pool=pool, upstream=upstream, proxy_instance=instance,
                                      accepted=accepted, code=code, message=message))  # fmt: skip
