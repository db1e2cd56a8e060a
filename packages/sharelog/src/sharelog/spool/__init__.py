"""The spool: an append-only, segmented, checksummed log on a directory shared by the
proxy (one producer) and the writer (one consumer). It is the queue, the retry buffer
and the outage fallback at once: when the database is away the spool just grows."""

from sharelog.spool.consumer import Batch, QueueDepth, SpoolReader
from sharelog.spool.format import Position
from sharelog.spool.producer import SpoolProducer

__all__ = ["Batch", "Position", "QueueDepth", "SpoolProducer", "SpoolReader"]
