"""The share event and the spool: the contract between the Stratum proxy and the share writer."""

from sharelog.event import FIELDS, TEXT_LIMITS, ShareEvent, Verdict, make_shard_key, make_share_id

__all__ = ["FIELDS", "TEXT_LIMITS", "ShareEvent", "Verdict", "make_shard_key", "make_share_id"]
