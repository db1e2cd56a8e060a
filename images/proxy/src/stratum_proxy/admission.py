"""What the proxy refuses before a request becomes anything: the reasons, and the rules.

The spool takes a share only when it can be attributed: it comes from a worker the pool
authorized, on a subscribed connection, within the connection's submit rate, under a
name and job id the database can store. Anything else is *refused*: answered with its
Stratum error, counted by reason (``stratum_proxy_requests_refused_total{reason}``, the
label being the ``Refusal``'s value) and never stored. A refusal is not a verdict: the
pool never judged the share, so there is nothing to record.

Pure rules, no I/O and no clock of their own: the session passes the time in.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from sharelog.event import TEXT_LIMITS, Verdict
from stratum_proxy.messages import stratum_error

# Unicode's control characters (category Cc): C0, DEL and C1. PostgreSQL can't store NUL
# in text at all, and none of them belongs in a name, a job id or a pool's message.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class Refusal(enum.Enum):
    """Why a request was refused unrecorded; the value is the metric label."""

    NOT_SUBSCRIBED = "not_subscribed"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    JOB_SHARES_FULL = "job_shares_full"
    TOO_MANY_WORKERS = "too_many_workers"
    INVALID_WORKER_NAME = "invalid_worker_name"
    INVALID_JOB_ID = "invalid_job_id"

    @property
    def code(self) -> int:
        """The Stratum error code the miner gets (the codes cgminer and bfgminer know)."""
        return _CODES.get(self, Verdict.OTHER)

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_CODES = {
    Refusal.NOT_SUBSCRIBED: Verdict.NOT_SUBSCRIBED,
    Refusal.UNAUTHORIZED: Verdict.UNAUTHORIZED,
}
_MESSAGES = {
    Refusal.NOT_SUBSCRIBED: "not subscribed",
    Refusal.UNAUTHORIZED: "unauthorized worker",
    Refusal.RATE_LIMITED: "rate limited",
    Refusal.JOB_SHARES_FULL: "too many shares for one job",
    Refusal.TOO_MANY_WORKERS: "too many workers on one connection",
    Refusal.INVALID_WORKER_NAME: "invalid worker name",
    Refusal.INVALID_JOB_ID: "invalid job id",
}


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal and, where it helps the miner's owner, what exactly was wrong."""

    reason: Refusal
    detail: str = ""

    def error(self) -> list[Any]:
        """The Stratum error the miner is answered with."""
        message = self.reason.message
        if self.detail:
            message = f"{message}: {self.detail}"
        return stratum_error(self.reason.code, message)


def text_problem(value: object, column: str) -> str | None:
    """Why ``value`` can't be stored in ``column`` (its width is ``TEXT_LIMITS``), or None."""
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    limit = TEXT_LIMITS[column]
    if len(value) > limit:
        return f"longer than {limit} characters"
    if _CONTROL.search(value):
        return "holds a control character"
    return None


def worker_name_refusal(login: object) -> Refused | None:
    """A login that can never be stored as a worker name is refused, not clipped."""
    problem = text_problem(login, "worker")
    return None if problem is None else Refused(Refusal.INVALID_WORKER_NAME, problem)


def unstorable_submit(params: list[Any]) -> Refused | None:
    """A well-formed submit whose worker name or job id the database can't store."""
    refused = worker_name_refusal(params[0])
    if refused is not None:
        return refused
    problem = text_problem(params[1], "job_id")
    return None if problem is None else Refused(Refusal.INVALID_JOB_ID, problem)


def printable(text: str) -> str:
    """A pool's message, storable: each control character becomes U+FFFD."""
    return _CONTROL.sub("\N{REPLACEMENT CHARACTER}", text)


class SubmitBudget:
    """A connection's submit rate: ``rate`` a second averaged over ``window`` seconds.

    A token bucket holding ``rate * window`` submits, refilled at ``rate``: a miner may
    burst a window's worth at once (reconnecting firmware flushes its queue), and no
    more than the rate over any longer stretch. The rate and window are the settings',
    passed in rather than kept: a budget is two floats, and there is one per connection.
    """

    __slots__ = ("_at", "_tokens")

    def __init__(self, rate: float, window: float, now: float) -> None:
        self._tokens = rate * window
        self._at = now

    def take(self, rate: float, window: float, now: float) -> bool:
        """Spend one submit; False (and nothing spent) when the budget is used up."""
        self._tokens = min(rate * window, self._tokens + (now - self._at) * rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
