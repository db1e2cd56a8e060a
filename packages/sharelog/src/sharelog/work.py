"""What a share is worth: rebuild the block header a miner hashed, and measure it.

Stratum V1 sends the pieces of a block header (``mining.notify``) and gets back the
miner's choices (``mining.submit``); the header is reassembled here exactly as the pool
does, hashed with SHA256d, and the hash compared with the pool's and the network's
targets. The proxy, the reference pool and the load generator all use this one module;
its tests check it against a real Bitcoin block, not against itself.

Byte orders, as Stratum V1 has them: version, nbits, ntime and nonce travel as
big-endian hex of the 32-bit value and sit little-endian in the header; prevhash
travels as eight 4-byte words each byte-swapped; merkle branches are internal order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# The target of difficulty 1 ("diff1"), as pools and miners define share difficulty.
DIFF1_TARGET = 0x00000000FFFF0000000000000000000000000000000000000000000000000000
HASH_LIMIT = (1 << 256) - 1  # a SHA256d can't exceed it: a target beyond it is no target
WORD_LIMIT = 0xFFFFFFFF  # version, nbits and ntime are 32-bit words in the header


def sha256d(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def swap_words(data: bytes) -> bytes:
    """Reverse the bytes of each 4-byte word (Stratum's prevhash encoding)."""
    return b"".join(data[i : i + 4][::-1] for i in range(0, len(data), 4))


def target_from_nbits(nbits: int) -> int:
    """The target a compact ``nbits`` encodes; 0, which no hash meets, when it encodes
    none: a negative number (the sign bit 0x00800000 with a mantissa) or one past 256
    bits, which Bitcoin's ``SetCompact`` flags and no block can satisfy."""
    exponent, mantissa = nbits >> 24, nbits & 0x007FFFFF
    if mantissa and nbits & 0x00800000:
        return 0
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    target = mantissa << (8 * (exponent - 3))
    return target if target <= HASH_LIMIT else 0


def difficulty_of_target(target: int) -> float:
    return DIFF1_TARGET / target if target else float("inf")


def target_of_difficulty(difficulty: float) -> int:
    return int(DIFF1_TARGET / difficulty)


@dataclass(frozen=True, slots=True)
class Job:
    """The header parts of one ``mining.notify``, decoded once when the job arrives."""

    job_id: str
    prevhash: bytes  # header order (words already swapped back)
    coinb1: bytes
    coinb2: bytes
    merkle_branch: tuple[bytes, ...]
    version: int
    nbits: int
    ntime: int
    clean_jobs: bool

    @classmethod
    def from_notify(cls, params: list[object]) -> Job:
        """Parse ``mining.notify`` params; ValueError when they are not a valid job.

        Version, nbits and ntime must be 32-bit words, as the header holds them: a pool
        that sends more sends no job the proxy can hash, not one that fails each share."""
        if not isinstance(params, list) or len(params) < 9:
            raise ValueError("mining.notify needs 9 params")
        job_id, prevhash, coinb1, coinb2, branch, version, nbits, ntime, clean = params[:9]
        if not isinstance(branch, list) or not all(isinstance(h, str) for h in branch):
            raise ValueError("merkle branch must be a list of hex strings")
        try:
            job = cls(
                job_id=str(job_id),
                prevhash=swap_words(bytes.fromhex(str(prevhash))),
                coinb1=bytes.fromhex(str(coinb1)),
                coinb2=bytes.fromhex(str(coinb2)),
                merkle_branch=tuple(bytes.fromhex(h) for h in branch),
                version=_word("version", version),
                nbits=_word("nbits", nbits),
                ntime=_word("ntime", ntime),
                clean_jobs=bool(clean),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"malformed mining.notify: {exc}") from None
        if len(job.prevhash) != 32 or any(len(h) != 32 for h in job.merkle_branch):
            raise ValueError("prevhash and merkle branch entries must be 32 bytes")
        return job

    def header_prefix(
        self,
        extranonce1: bytes,
        extranonce2: bytes,
        ntime: int,
        version_bits: int | None = None,
        version_mask: int = 0,
    ) -> bytes:
        """The first 76 bytes of the header: everything but the nonce.

        Miners hash many nonces over one prefix, so it is built once per extranonce2.
        """
        root = sha256d(self.coinb1 + extranonce1 + extranonce2 + self.coinb2)
        for branch in self.merkle_branch:
            root = sha256d(root + branch)
        version = self.version
        if version_bits is not None:
            version = (version & ~version_mask) | (version_bits & version_mask)
        return (
            (version & 0xFFFFFFFF).to_bytes(4, "little")
            + self.prevhash
            + root
            + ntime.to_bytes(4, "little")
            + self.nbits.to_bytes(4, "little")
        )

    def header(
        self,
        extranonce1: bytes,
        extranonce2: bytes,
        ntime: int,
        nonce: int,
        version_bits: int | None = None,
        version_mask: int = 0,
    ) -> bytes:
        """The 80-byte header for a submitted solution."""
        prefix = self.header_prefix(extranonce1, extranonce2, ntime, version_bits, version_mask)
        return prefix + nonce.to_bytes(4, "little")


def _word(name: str, text: object) -> int:
    """A header word sent as hex; ValueError when it is not one (negative, or past 32 bits)."""
    value = int(str(text), 16)
    if not 0 <= value <= WORD_LIMIT:
        raise ValueError(f"{name} {str(text)[:20]!r} is not a 32-bit word")
    return value


def nbits_from_target(target: int) -> int:
    """The compact form of a target (as a pool encodes the network target in a job)."""
    size = (target.bit_length() + 7) // 8
    mantissa = target >> (8 * (size - 3)) if size > 3 else target << (8 * (3 - size))
    if mantissa & 0x00800000:  # the sign bit: shift one byte further
        mantissa >>= 8
        size += 1
    return (size << 24) | mantissa


def hash_value(header: bytes) -> int:
    """The header's SHA256d as the number that is compared with targets."""
    return int.from_bytes(sha256d(header), "little")


def share_difficulty(header: bytes) -> float:
    """The difficulty this header actually reached."""
    return DIFF1_TARGET / max(hash_value(header), 1)  # finite: every database can store it
