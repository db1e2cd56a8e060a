"""A submitted share from the moment it arrives to the event that records its fate.

A share's identity and worth (extranonce1, the difficulty it reached, whether it is a
block candidate) are those the pool judged it under. The session relays a submit only
once no subscribe is in flight (a submit crossing one is held until it is answered), so
the extranonce1 the proxy knows when it relays is the one the pool's in-order replies
had set: the share is identified and hashed then.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sharelog.event import ShareEvent, clip, make_shard_key, make_share_id
from sharelog.work import Job, hash_value, share_difficulty, target_from_nbits

HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
MAX_EXTRANONCE2_HEX = 32  # the column's width; real firmware uses 8 to 16 digits


def is_hex(value: object, length: int | None = None, *, most: int = 64) -> bool:
    """A non-empty string of whole bytes in hex (``bytes.fromhex`` will take it)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= most
        and len(value) % 2 == 0
        and (length is None or len(value) == length)
        and set(value) <= HEX_DIGITS
    )


def submit_params_problem(params: list[object]) -> str | None:
    """Why these ``mining.submit`` params are not a share, or None when they are one."""
    if not 5 <= len(params) <= 6:
        return "expected [worker, job_id, extranonce2, ntime, nonce(, version_bits)]"
    if not isinstance(params[0], str) or not isinstance(params[1], str):
        return "worker and job_id must be strings"
    if not is_hex(params[2], most=MAX_EXTRANONCE2_HEX):
        return f"extranonce2 must be whole bytes of hex, at most {MAX_EXTRANONCE2_HEX} digits"
    for name, value in zip(("ntime", "nonce", "version_bits"), params[3:], strict=False):
        if not is_hex(value, 8):
            return f"{name} must be 8 hex digits"
    return None


def split_login(login: str) -> tuple[str, str]:
    """``account.worker`` -> (account, worker part); a bare account has an empty worker."""
    account, _, rig = login.partition(".")
    return account, rig


@dataclass(slots=True)
class Share:
    user_identity: str
    worker: str
    job_id: str
    extranonce2: str
    ntime: str
    nonce: str
    version_bits: str | None
    difficulty: float  # the target the job was sent with
    job: Job | None  # kept: the job may be gone from the session when the verdict comes
    submitted_at: int
    extranonce1: str = ""  # set by identify(), before the share is judged
    share_difficulty: float = 0.0
    block_candidate: bool = False

    @classmethod
    def from_params(cls, params: list[str], job: Job | None, difficulty: float) -> Share:
        login = params[0]
        user_identity, _ = split_login(login)
        return cls(
            user_identity=clip("user_identity", user_identity),
            worker=clip("worker", login),
            job_id=clip("job_id", params[1]),
            extranonce2=params[2],
            ntime=params[3],
            nonce=params[4],
            version_bits=params[5] if len(params) == 6 else None,
            difficulty=difficulty,
            job=job,
            submitted_at=time.time_ns() // 1000,
        )

    def identify(self, extranonce1: str | None, version_mask: int) -> None:
        """Fix the extranonce1 the pool judged this share under, and hash it with it."""
        self.extranonce1 = extranonce1 or ""
        if self.job is None or not extranonce1:
            return
        header = self.job.header(
            bytes.fromhex(extranonce1),
            bytes.fromhex(self.extranonce2),
            int(self.ntime, 16),
            int(self.nonce, 16),
            int(self.version_bits, 16) if self.version_bits else None,
            version_mask,
        )
        self.share_difficulty = share_difficulty(header)
        self.block_candidate = hash_value(header) <= target_from_nbits(self.job.nbits)

    def solution(self) -> bytes:
        """What makes two submits of one job the same share (never the request id), in
        few bytes: one is kept for every share of a live job. The two lengths make it
        unambiguous whatever extranonce sizes the pool and the miner use."""
        en1, en2 = self.extranonce1, self.extranonce2
        return bytes((len(en1) // 2, len(en2) // 2)) + bytes.fromhex(
            en1 + en2 + self.ntime + self.nonce + (self.version_bits or "")
        )

    def event(
        self, *, pool: str, upstream: str, proxy_instance: str,
        accepted: bool, code: int | None, message: str | None,
    ) -> ShareEvent:  # fmt: skip
        en1 = self.extranonce1
        return ShareEvent(
            share_id=make_share_id(self.submitted_at, upstream, self.job_id, en1,
                                   self.extranonce2, self.ntime, self.nonce, self.version_bits),
            pool=pool,
            upstream=upstream,
            user_identity=self.user_identity,
            worker=self.worker,
            shard_key=make_shard_key(self.user_identity),
            job_id=self.job_id,
            extranonce1=clip("extranonce1", en1),
            extranonce2=self.extranonce2,
            ntime=self.ntime,
            nonce=self.nonce,
            version_bits=self.version_bits,
            difficulty=self.difficulty,
            share_difficulty=self.share_difficulty,
            accepted=accepted,
            error_code=None if accepted else int(code if code is not None else 20),
            error_message=None if message is None else clip("error_message", message),
            block_candidate=self.block_candidate,
            submitted_at=self.submitted_at,
            responded_at=time.time_ns() // 1000,
            proxy_instance=proxy_instance,
        )  # fmt: skip
