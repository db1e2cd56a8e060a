"""How ``stratum-writer`` ends: its exit codes, and the one error every command
raises for a failure at start (printed as one line, never with the password)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    DONE = 0  # drain: the spool is empty and holds no dead letters
    STILL_FAILING = 1  # replay left shares that still fail, or the VSchema differs
    CANNOT_START = 2  # bad settings, or a database unreachable at start (drain waits)
    NOT_MIGRATED = 3  # the schema is not migrated
    DEAD_LETTERS_LEFT = 4  # drain: the spool is empty, dead letters remain: replay them
    SCHEMA_REFUSED = 5  # a schema newer than this writer; a down migration refused
    SPOOL_DAMAGED = 6  # drain: the spool is empty, but damaged bytes of it lie in quarantine
    STOPPED_EARLY = 75  # drain stopped (SIGTERM) before the spool was empty: run it again


class StartupError(Exception):
    """``unreachable``: the database did not answer (an outage, worth waiting out)."""

    def __init__(
        self, message: str, code: ExitCode = ExitCode.CANNOT_START, *, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.unreachable = unreachable
