"""The share event's identity and encoding: what makes replays harmless."""

from __future__ import annotations

import dataclasses

import pytest

from sharelog import event
from sharelog.codec import PayloadError, decode, encode, from_json, to_json
from sharelog.event import FIELDS, ShareEvent, make_shard_key, make_share_id
from sharelog.synthetic import synthetic_events


def test_literal_column_positions_agree_with_fields() -> None:
    for name in ("pool", "user_identity", "worker", "shard_key", "difficulty", "accepted",
                 "error_code", "submitted_at"):  # fmt: skip
        assert FIELDS[getattr(event, name.upper())] == name
    assert [f.name for f in dataclasses.fields(ShareEvent)] == list(FIELDS)


def test_same_submission_same_id_resubmission_new_id() -> None:
    args = ("stratum+tcp://p:3333", "j1", "f000000a", "00000001", "6744e5a0", "deadbeef", None)
    first = make_share_id(1_000_000, *args)
    assert make_share_id(1_000_000, *args) == first, "a replay must map to the same row"
    assert make_share_id(1_000_001, *args) != first, "a miner's resubmission is its own event"
    assert make_share_id(1_000_000, *args[:-1], "1fffe000") != first
    assert len(first) == 16


def test_ids_sort_by_submission_time() -> None:
    ids = [e.share_id for e in synthetic_events(1000)]
    assert ids == sorted(ids), "a time-prefixed key grows at the end of the index"


def test_shard_key_is_stable_positive_63_bit() -> None:
    key = make_shard_key("acct0001")
    assert key == make_shard_key("acct0001")
    assert 0 <= key < 2**63


def test_codec_round_trips_every_field() -> None:
    for e in synthetic_events(50):
        row = decode(encode(e))
        assert ShareEvent.from_row(row) == e
        assert from_json(to_json(row)) == row


@pytest.mark.parametrize(
    "payload", [b"not json", b"{}", b"[2]", b'[1, "zz"]', encode(next(synthetic_events(1)))[:-5]]
)
def test_codec_refuses_what_is_not_a_share_event(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        decode(payload)
