"""Everything the writer says goes out through ``redaction``: its log lines (messages and
tracebacks), the one line a failed command prints, and a crash's traceback. A driver's
error may quote the connection URL or a piece of it; none of it reaches a log, a Job's
termination message, or from there the pool's conditions."""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from sharelog.logfmt import JsonFormatter
from stratum_writer.redaction import redact_text

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class RedactingFormatter(JsonFormatter):
    """The JSON log line, with ``address``'s credentials and any URL's masked in the
    message and the traceback before they are encoded."""

    def __init__(self, address: str | None) -> None:
        super().__init__()
        self.address = address

    def format(self, record: logging.LogRecord) -> str:
        said = redact_text(record.getMessage(), self.address)
        return super().format(logging.makeLogRecord({**record.__dict__, "msg": said, "args": None}))

    def formatException(self, ei: _ExcInfo | tuple[None, None, None]) -> str:  # noqa: N802
        return redact_text(super().formatException(ei), self.address)


def redact_output(address: str | None) -> None:
    """Every handler of the root logger, and an uncaught exception's traceback, redacted."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter(address))

    def crashed(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        sys.stderr.write(redact_text("".join(traceback.format_exception(kind, exc, tb)), address))

    sys.excepthook = crashed


def say(message: str, address: str | None) -> None:
    """One line on stderr, redacted: how a command that can't go on says why."""
    print(redact_text(message, address), file=sys.stderr)
