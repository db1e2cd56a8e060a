"""Header math checked against a real Bitcoin block, not against itself."""

from __future__ import annotations

import pytest

from sharelog.work import (
    Job,
    difficulty_of_target,
    hash_value,
    sha256d,
    share_difficulty,
    swap_words,
    target_from_nbits,
)

# Block 125552, the example of the Bitcoin wiki's "Block hashing algorithm".
PREV = "00000000000008a3a41b85b8b29ad444def299fee21793cd8b9e567eab02cd81"
MERKLE = "2b12fcf1b09288fcaff797d71e950e71ae42b91e8bdb2304758dfcffc2b620e3"
HASH = "00000000000000001e8d6829a8a21adc5d38d0a473b144b6765798e61f98bd1d"
VERSION, TIME, BITS, NONCE = 1, 1305998791, 0x1A44B9F2, 2504433986


def _header() -> bytes:
    return (
        VERSION.to_bytes(4, "little")
        + bytes.fromhex(PREV)[::-1]
        + bytes.fromhex(MERKLE)[::-1]
        + TIME.to_bytes(4, "little")
        + BITS.to_bytes(4, "little")
        + NONCE.to_bytes(4, "little")
    )


def test_block_125552_hashes_to_its_known_hash() -> None:
    assert sha256d(_header())[::-1].hex() == HASH
    assert hash_value(_header()) <= target_from_nbits(BITS), "a real block meets its target"


def test_network_difficulty_of_block_125552() -> None:
    assert round(difficulty_of_target(target_from_nbits(BITS)), 2) == 244112.49


def test_job_rebuilds_the_header_from_stratum_encodings() -> None:
    """Encode block 125552 the way a Stratum pool would, and rebuild it.

    With an empty merkle branch the coinbase hash is the merkle root, so the coinbase is
    chosen as bytes whose SHA256d is unknown; instead we check the pieces around it: a
    job with the real prevhash/version/nbits and a submit with the real ntime/nonce
    yields a header that differs from the real one only in the merkle root.
    """
    stratum_prev = swap_words(bytes.fromhex(PREV)[::-1]).hex()
    job = Job.from_notify(
        ["1", stratum_prev, "01", "02", [], f"{VERSION:08x}", f"{BITS:08x}", f"{TIME:08x}", True]
    )
    header = job.header(b"\xaa", b"\xbb", TIME, NONCE)
    real = _header()
    assert header[:36] == real[:36]  # version + prevhash
    assert header[68:] == real[68:]  # ntime + nbits + nonce
    assert header[36:68] == sha256d(bytes.fromhex("01aabb02"))


def test_version_rolling_only_touches_the_masked_bits() -> None:
    job = Job.from_notify(["1", "00" * 32, "", "", [], "20000000", "1d00ffff", "5f000000", False])
    header = job.header(b"", b"", 0, 0, version_bits=0x1FFFE000 | 0x1, version_mask=0x1FFFE000)
    assert int.from_bytes(header[:4], "little") == 0x20000000 | 0x1FFFE000


def test_share_difficulty_is_diff1_over_the_hash() -> None:
    header = _header()
    assert share_difficulty(header) > 244112.49  # the block beat its own target


def test_nbits_round_trips_through_targets() -> None:
    from sharelog.work import nbits_from_target

    for nbits in (BITS, 0x1D00FFFF, 0x207FFFFF, 0x1B0404CB):
        assert nbits_from_target(target_from_nbits(nbits)) == nbits


def _notify(nbits: str, *, version: str = "20000000", ntime: str = "5f000000") -> list[object]:
    return ["1", "00" * 32, "01", "02", [], version, nbits, ntime, True]


@pytest.mark.parametrize("nbits", ["1ffffffff", "-1", "1d00ffff00"])
def test_a_job_whose_nbits_is_no_header_word_is_no_job(nbits: str) -> None:
    """Not a job that raises on every share hashed against it: no job at all, so the
    proxy records its shares unhashed (as for an unknown job) and the miner goes on."""
    with pytest.raises(ValueError, match="nbits"):
        Job.from_notify(_notify(nbits))


@pytest.mark.parametrize(("field", "value"), [("version", "100000000"), ("ntime", "-5")])
def test_version_and_ntime_must_be_header_words_too(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        Job.from_notify(_notify("1d00ffff", **{field: value}))


@pytest.mark.parametrize(
    "nbits",
    [
        0xFF7FFFFF,  # exponent 255: a target of thousands of bits
        0x227FFFFF,  # exponent 0x22: past 256 bits
        0x21010000,  # exponent 0x21 and a mantissa of 2**16: 2**256, one past
        0x2300FFFF,
        0x1D80FFFF,  # the sign bit: a negative target
        0x00000000,
    ],
)
def test_an_nbits_that_encodes_no_target_is_met_by_no_share(nbits: int) -> None:
    job = Job.from_notify(_notify(f"{nbits:08x}"))
    header = job.header(b"\x01", b"\x02", 0, 0)  # every word fits: the header builds
    assert len(header) == 80
    assert target_from_nbits(nbits) == 0
    assert not hash_value(header) <= target_from_nbits(nbits), "no block candidate"
    assert share_difficulty(header) > 0  # what the share reached is still measured


def test_the_largest_targets_that_fit_are_kept() -> None:
    assert target_from_nbits(0x207FFFFF) == 0x7FFFFF << (8 * 29)  # regtest's limit
    assert target_from_nbits(0x2100FFFF) == 0xFFFF << (8 * 30)  # 2**256 - 2**240
