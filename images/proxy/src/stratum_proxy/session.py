"""One miner's session: what to relay, what to answer, and the fate of every share.

Pure state, no I/O (the connection module owns the sockets): each input, a miner line
or an upstream line or the passing of time, goes in, and an Outbox of bytes for either
side plus finished share events comes out. That keeps every protocol rule testable
without a network.

Request ids: every request the proxy sends upstream gets an id of the proxy's own, and
the reply is mapped back to the miner's id, so miners that reuse ids (some send every
submit as id 4) never get a verdict meant for another share.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sharelog.event import ShareEvent, Verdict, clip, make_shard_key, make_share_id
from sharelog.work import Job, hash_value, share_difficulty, target_from_nbits
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

_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class SessionSettings:
    pool: str
    proxy_instance: str
    upstream_account: str | None = None  # rewrite logins to this pool account
    upstream_password: str = "x"  # noqa: S105 - Stratum convention, not a secret
    local_reject: bool = True  # answer duplicate and low-difficulty shares ourselves
    submit_timeout: float = 30.0
    max_pending: int = 256
    max_jobs: int = 32
    max_seen: int = 200_000


@dataclass(slots=True)
class Outbox:
    to_miner: list[bytes] = field(default_factory=list)
    to_upstream: list[bytes] = field(default_factory=list)
    events: list[ShareEvent] = field(default_factory=list)
    close_reason: str | None = None


@dataclass(slots=True)
class _Submit:
    user_identity: str
    worker: str
    job_id: str
    extranonce1: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    difficulty: float
    share_difficulty: float
    block_candidate: bool
    submitted_at: int


@dataclass(slots=True)
class _Pending:
    method: str
    miner_id: JsonId
    sent_at: float
    submit: _Submit | None = None
    login: str | None = None


def _is_hex(value: object, length: int | None = None) -> bool:
    return (
        isinstance(value, str)
        and bool(value)
        and (length is None or len(value) == length)
        and len(value) <= 64
        and set(value) <= _HEX
    )


def split_login(login: str) -> tuple[str, str]:
    """``account.worker`` -> (account, worker part); a bare account has an empty worker."""
    account, _, rig = login.partition(".")
    return account, rig


class MinerSession:
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
        self._next_id = 1
        self.accepted = 0
        self.rejected = 0

    # -- miner -> proxy -------------------------------------------------------------------

    def from_miner(self, msg: Message, raw: bytes, out: Outbox) -> None:
        if isinstance(msg, Response):  # an answer to a request the pool sent the miner
            out.to_upstream.append(raw)
            return
        if msg.id is None:  # a notification: nothing comes back, nothing to map
            out.to_upstream.append(raw)
            return
        if msg.method == "mining.submit":
            self._submit(msg, out)  # over the in-flight limit too: its fate is recorded
            return
        if len(self.pending) >= self.settings.max_pending:
            out.to_miner.append(
                encode_response(msg.id, None, stratum_error(20, "too many requests in flight"))
            )
            return
        params = msg.params
        pending = _Pending(msg.method, msg.id, time.monotonic())
        if msg.method == "mining.authorize":
            params, pending.login = self._authorize_params(params)
        self._send_upstream(msg.method, params, pending, out)

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

    def _submit(self, msg: Request, out: Outbox) -> None:
        p = msg.params
        if not (
            5 <= len(p) <= 6
            and isinstance(p[0], str)
            and isinstance(p[1], str)
            and _is_hex(p[2])
            and _is_hex(p[3], 8)
            and _is_hex(p[4], 8)
            and (len(p) == 5 or _is_hex(p[5], 8))
        ):
            out.to_miner.append(
                encode_response(msg.id, None, stratum_error(20, "malformed submit"))
            )
            return
        login, job_id, en2, ntime, nonce = p[0], p[1], p[2], p[3], p[4]
        version_bits = p[5] if len(p) == 6 else None
        user_identity, _ = split_login(login)
        entry = self.jobs.get(job_id)
        difficulty = entry[1] if entry else self.difficulty
        reached, candidate = 0.0, False
        if entry is not None and self.extranonce1 is not None:
            job = entry[0]
            header = job.header(
                bytes.fromhex(self.extranonce1),
                bytes.fromhex(en2),
                int(ntime, 16),
                int(nonce, 16),
                int(version_bits, 16) if version_bits else None,
                self.version_mask,
            )
            value = hash_value(header)
            reached = share_difficulty(header)
            candidate = value <= target_from_nbits(job.nbits)
        submit = _Submit(
            user_identity=clip("user_identity", user_identity),
            worker=clip("worker", login),
            job_id=clip("job_id", job_id),
            extranonce1=self.extranonce1 or "",
            extranonce2=clip("extranonce2", en2),
            ntime=ntime,
            nonce=nonce,
            version_bits=version_bits,
            difficulty=difficulty,
            share_difficulty=reached,
            block_candidate=candidate,
            submitted_at=time.time_ns() // 1000,
        )
        solution = (job_id, submit.extranonce1, en2, ntime, nonce, version_bits or "")
        duplicate = solution in self.seen
        if not duplicate:
            if len(self.seen) >= self.settings.max_seen:
                self.seen.clear()  # bounded memory; jobs this old are stale anyway
            self.seen.add(solution)
        local = self._local_verdict(submit, login, entry is not None, duplicate)
        if local is not None:
            code, message = local
            out.to_miner.append(encode_response(msg.id, None, stratum_error(code, message)))
            self._record(submit, False, code, f"{message} (answered by proxy)", out)
            return
        params = list(p)
        upstream_login = self.authorized.get(login)
        if upstream_login is not None:
            params[0] = upstream_login
        self._send_upstream("mining.submit", params, _Pending("mining.submit", msg.id,
                            time.monotonic(), submit), out)  # fmt: skip

    def _local_verdict(
        self, submit: _Submit, login: str, job_known: bool, duplicate: bool
    ) -> tuple[int, str] | None:
        if len(self.pending) >= self.settings.max_pending:
            # The pool is this far behind; relaying more only deepens the backlog.
            return Verdict.OTHER, "too many submits in flight"
        if not self.settings.local_reject:
            return None
        if self.extranonce1 is None:
            return Verdict.NOT_SUBSCRIBED, "not subscribed"
        if login not in self.authorized:
            return Verdict.UNAUTHORIZED, "unauthorized worker"
        if not job_known:
            return Verdict.STALE, "job not found"
        if duplicate:
            return Verdict.DUPLICATE, "duplicate share"
        if submit.share_difficulty < submit.difficulty:
            return Verdict.LOW_DIFFICULTY, "low difficulty share"
        return None

    # -- upstream -> proxy ----------------------------------------------------------------

    def from_upstream(self, msg: Message, raw: bytes, out: Outbox) -> None:
        if isinstance(msg, Request):
            self._upstream_request(msg, raw, out)
            return
        if not isinstance(msg.id, int) or msg.id not in self.pending:
            return  # a reply to a request that timed out, or to nothing we sent
        pending = self.pending.pop(msg.id)
        if pending.method == "mining.subscribe" and isinstance(msg.result, list):
            self._subscribed(msg.result)
        elif pending.method == "mining.configure" and isinstance(msg.result, dict):
            mask = msg.result.get("version-rolling.mask")
            if msg.result.get("version-rolling") and isinstance(mask, str) and _is_hex(mask, 8):
                self.version_mask = int(mask, 16)
        elif pending.method == "mining.authorize" and msg.result is True and pending.login:
            account = self._authorize_params([pending.login])[0][0]
            self.authorized[pending.login] = account
        elif pending.submit is not None:
            if msg.result is True and msg.error is None:
                self._record(pending.submit, True, None, None, out)
            else:
                code, message = error_code(msg.error)
                self._record(pending.submit, False, code, message or "rejected", out)
        out.to_miner.append(encode_response(pending.miner_id, msg.result, msg.error))

    def _subscribed(self, result: list[Any]) -> None:
        if len(result) >= 3 and _is_hex(result[1]) and isinstance(result[2], int):
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
            and _is_hex(params[0])
            and isinstance(params[1], int)
        ):
            self.extranonce1, self.extranonce2_size = params[0], params[1]
        out.to_miner.append(raw)  # relayed untouched, known method or not

    # -- time and loss --------------------------------------------------------------------

    def expire(self, now: float, out: Outbox) -> None:
        """Answer requests the pool left unanswered past the submit timeout."""
        limit = self.settings.submit_timeout
        for upstream_id, pending in list(self.pending.items()):
            if now - pending.sent_at < limit:
                continue
            del self.pending[upstream_id]
            message = "upstream did not answer in time"
            if pending.submit is not None:
                self._record(pending.submit, False, Verdict.TIMEOUT, message, out)
            out.to_miner.append(encode_response(pending.miner_id, None, stratum_error(20, message)))

    def upstream_lost(self, reason: str, out: Outbox) -> None:
        """The pool connection died: in-flight shares were never confirmed."""
        for pending in self.pending.values():
            if pending.submit is not None:
                self._record(pending.submit, False, Verdict.UPSTREAM_LOST, reason, out)
            out.to_miner.append(
                encode_response(pending.miner_id, None, stratum_error(20, "upstream lost"))
            )
        self.pending.clear()

    # -- recording ------------------------------------------------------------------------

    def _record(
        self, s: _Submit, accepted: bool, code: int | None, message: str | None, out: Outbox
    ) -> None:
        if accepted:
            self.accepted += 1
        else:
            self.rejected += 1
        upstream = clip("upstream", self.upstream)
        out.events.append(
            ShareEvent(
                share_id=make_share_id(
                    s.submitted_at,
                    upstream,
                    s.job_id,
                    s.extranonce1,
                    s.extranonce2,
                    s.ntime,
                    s.nonce,
                    s.version_bits,
                ),
                pool=clip("pool", self.settings.pool),
                upstream=upstream,
                user_identity=s.user_identity,
                worker=s.worker,
                shard_key=make_shard_key(s.user_identity),
                job_id=s.job_id,
                extranonce1=clip("extranonce1", s.extranonce1),
                extranonce2=s.extranonce2,
                ntime=s.ntime,
                nonce=s.nonce,
                version_bits=s.version_bits,
                difficulty=s.difficulty,
                share_difficulty=s.share_difficulty,
                accepted=accepted,
                error_code=None if accepted else int(code if code is not None else 20),
                error_message=None if message is None else clip("error_message", message),
                block_candidate=s.block_candidate,
                submitted_at=s.submitted_at,
                responded_at=time.time_ns() // 1000,
                proxy_instance=clip("proxy_instance", self.settings.proxy_instance),
            )
        )
