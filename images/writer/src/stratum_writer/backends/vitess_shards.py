"""Which Vitess shard a share lands on, computed exactly as vtgate computes it.

``share_events`` and ``worker_stats_minute`` are sharded by Vitess's ``hash`` vindex on
``shard_key`` (``vitess/vschema.json``): the keyspace id of a row is the 8-byte
big-endian ``shard_key`` encrypted with DES under an all-zero key, and a shard such as
``40-80`` owns the keyspace ids from ``0x40`` (inclusive) to ``0x80`` (exclusive).

The writer groups each batch by shard so every database transaction touches one shard.
A multi-shard transaction through vtgate is either refused (``transaction_mode=SINGLE``)
or committed shard by shard with no atomicity across them (``MULTI``, the default);
one transaction per shard is atomic in both modes, and because a user's shares and
rollups share a shard, each shard's commit keeps its own rows and rollups consistent.
A test checks these keyspace ids against Vitess's own Go code.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from sharelog.event import SHARD_KEY, Row

_CACHE_LIMIT = 1 << 20  # distinct users remembered; one DES block each to recompute


# ECB encrypts each 8-byte block on its own, so one long-lived encryptor serves every
# call, and a batch's unknown keys go through it in one update (cold batches: 6x faster).
_DES = Cipher(TripleDES(bytes(24)), modes.ECB()).encryptor()  # noqa: S305 - Vitess's choice


def keyspace_ids(shard_keys: Sequence[int]) -> list[bytes]:
    """The ``hash`` vindex: 3DES with a zero key is single DES with a zero key."""
    blocks = bytearray()
    for key in shard_keys:
        if not 0 <= key < 1 << 64:
            raise ValueError(f"shard_key {key} is outside the hash vindex's uint64 range")
        blocks += key.to_bytes(8, "big")
    out = _DES.update(bytes(blocks))
    return [out[i : i + 8] for i in range(0, len(out), 8)]


def keyspace_id(shard_key: int) -> bytes:
    return keyspace_ids([shard_key])[0]


def parse_shard(name: str) -> tuple[bytes, bytes]:
    """``"40-80"`` -> (b"\\x40", b"\\x80"); an empty side is the open end of the range."""
    if name == "0":  # what Vitess calls the one shard of an unsplit keyspace
        return b"", b""
    start, sep, end = name.partition("-")
    if not sep or name.count("-") != 1:
        raise ValueError(f"shard {name!r} is not a key range like '-80', '40-80' or '80-'")
    try:
        low, high = bytes.fromhex(start), bytes.fromhex(end)
    except ValueError:
        raise ValueError(f"shard {name!r}: key range bounds must be hex") from None
    if high and low >= high:
        raise ValueError(f"shard {name!r}: start must be below end")
    return low, high


class ShardMap:
    """The keyspace's shards, checked to cover every keyspace id exactly once."""

    def __init__(self, shards: Sequence[str]) -> None:
        if not shards:
            raise ValueError("a sharded keyspace needs at least one shard")
        ranges = sorted((parse_shard(s), s) for s in shards)
        expected = b""
        for i, ((low, high), name) in enumerate(ranges):
            if low.rstrip(b"\0") != expected.rstrip(b"\0") or (not high and i < len(ranges) - 1):
                raise ValueError(
                    f"shards {list(shards)} leave a gap or overlap at {name!r}: "
                    "they must cover the whole keyspace exactly once, as Vitess's do"
                )
            expected = high
        if expected:
            raise ValueError(f"shards {list(shards)} do not reach the end of the keyspace")
        self.names = [name for _, name in ranges]
        self._ends = [high for (_, high), _ in ranges]
        self._by_key: dict[int, int] = {}

    def _learn(self, shard_keys: set[int], batch: Sequence[Row] = ()) -> None:
        if len(self._by_key) + len(shard_keys) > _CACHE_LIMIT:
            self._by_key.clear()  # then the whole batch's keys are unknown again
            shard_keys = shard_keys | {row[SHARD_KEY] for row in batch}
        keys = list(shard_keys)
        for key, kid in zip(keys, keyspace_ids(keys), strict=True):
            self._by_key[key] = next(i for i, end in enumerate(self._ends) if not end or kid < end)

    def shard_of(self, shard_key: int) -> str:
        if shard_key not in self._by_key:
            self._learn({shard_key})
        return self.names[self._by_key[shard_key]]

    def split(self, rows: Sequence[Row]) -> list[Sequence[Row]]:
        """The batch in one group per shard it touches, each group in the batch's order."""
        by_key = self._by_key
        unknown = {row[SHARD_KEY] for row in rows if row[SHARD_KEY] not in by_key}
        if unknown:
            self._learn(unknown, rows)
        groups: dict[int, list[Row]] = {}
        for row in rows:
            groups.setdefault(by_key[row[SHARD_KEY]], []).append(row)
        if len(groups) == 1:
            return [rows]
        return [groups[i] for i in sorted(groups)]
