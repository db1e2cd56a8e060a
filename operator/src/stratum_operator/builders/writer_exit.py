"""The writer's exit codes, as the operator's Jobs read them, and the one file of the
spool a drain's failure points a person to.

The operator can't import the writer (another image), so ``stratum_writer.exits.ExitCode``
and ``sharelog.spool.format.QUARANTINE`` are restated here; a test pins the copies,
name by name.
"""

from __future__ import annotations

import enum


class WriterExit(enum.IntEnum):
    DONE = 0
    STILL_FAILING = 1
    CANNOT_START = 2
    NOT_MIGRATED = 3
    DEAD_LETTERS_LEFT = 4
    SCHEMA_REFUSED = 5
    SPOOL_DAMAGED = 6
    STOPPED_EARLY = 75


# exits that a retry in seconds won't change: settings or a database URL that are wrong,
# a schema newer than the writer (the operator was downgraded: migrate down first)
CONFIGURATION_ERRORS = (WriterExit.CANNOT_START, WriterExit.SCHEMA_REFUSED)
# beside the spool: the bytes of it that were no record (SPOOL_DAMAGED)
SPOOL_QUARANTINE = "quarantine.jsonl"
# drain exits with the spool empty and evidence beside it: the claim stays for a person
EVIDENCE_LEFT = (WriterExit.DEAD_LETTERS_LEFT, WriterExit.SPOOL_DAMAGED)
