"""No database password is ever shown: every way a URL or key=value DSN can be written
(characters a URL must encode left unencoded, a password option, libpq's quoting and
escapes) is redacted, and a writer started with such a URL against a database that isn't
there says why it failed without a piece of it."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.databases import free_port
from harness.writer import WriterProcess
from stratum_writer.backends import mysql
from stratum_writer.exits import ExitCode
from stratum_writer.redaction import redact, redact_text

# a password is three markers joined by hostile characters: none of the markers may show
MARKERS = ("Qz7mark", "Wx8mark", "Kv9mark")
HOSTILE = "#/@:?&=;%+ '\"\\\t,()[]{}<>!$*|~`é€\U0001f600"
HOST = "db.example"


def password(first: str, second: str) -> str:
    return f"{MARKERS[0]}{first}{MARKERS[1]}{second}{MARKERS[2]}"


def libpq_quoted(secret: str) -> str:
    return "'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_escaped(secret: str) -> str:
    return "".join("\\" + c if c.isspace() or c in "'\\" else c for c in secret)


# every way a password is written into an address; True: it has no space in it unless
# the password has, so a word-by-word scan of free text finds it whole
ADDRESSES: dict[str, Callable[[str], str]] = {
    "url, raw": lambda p: f"postgresql://stratum:{p}@{HOST}:5432/shares",
    "url, encoded": lambda p: f"postgresql://stratum:{quote(p, safe='')}@{HOST}:5432/shares",
    "url, raw, options": lambda p: f"mysql://stratum:{p}@{HOST}:3306/shares?ssl-mode=REQUIRED",
    "url, ipv6": lambda p: f"postgres://stratum:{p}@[::1]:5432/shares",
    "url, no user": lambda p: f"postgresql://:{p}@{HOST}/shares",
    "password option": lambda p: f"postgresql://stratum@{HOST}/shares?sslmode=require&password={p}",
    "password option, encoded": lambda p: (
        f"postgresql://{HOST}/shares?password={quote(p, safe='')}"
    ),
    "sslpassword option": lambda p: (
        f"postgresql://{HOST}/shares?sslpassword={p}&sslmode=verify-full"
    ),
    "key=value, quoted": lambda p: (
        f"host={HOST} port=5432 dbname=shares user=u password={libpq_quoted(p)}"
    ),
    "key=value, escaped": lambda p: (
        f"host={HOST} dbname=shares password={libpq_escaped(p)} sslmode=require"
    ),
    "key=value, password first": lambda p: f"password={libpq_quoted(p)} host={HOST} dbname=shares",
    "key=value, unterminated": lambda p: f"host={HOST} dbname=shares password='{p}",
    "key=value, raw": lambda p: f"host={HOST} dbname=shares PassWord={p}",
}


def assert_hidden(shown: str, secret: str) -> None:
    assert secret not in shown, shown
    for marker in MARKERS:
        assert marker not in shown, shown


hostile = st.text(alphabet=HOSTILE, min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(hostile, hostile)
def test_no_address_shows_its_password_however_written(first: str, second: str) -> None:
    secret = password(first, second)
    for form, written in ADDRESSES.items():
        address = written(secret)
        shown = redact(address)
        assert_hidden(shown, secret)
        if "[::1]" not in address:
            assert HOST in shown, (form, shown)


@settings(max_examples=200, deadline=None)
@given(hostile, hostile)
def test_an_error_quoting_the_address_or_a_piece_of_it_shows_no_password(
    first: str, second: str
) -> None:
    """What a driver's error may say, read with the address in use (as the writer does)."""
    secret = password(first, second)
    for address in (written(secret) for written in ADDRESSES.values()):
        for said in (
            f"cannot connect to {address}: refused",
            f"invalid DSN {address!r}",
            f"could not translate host name {secret!r} to address",
            f"bad port {quote(secret)}",
            *parsers_complaints(address),
        ):
            assert_hidden(redact_text(said, address), secret)


def parsers_complaints(address: str) -> list[str]:
    """What the URL parsers the drivers use say of ``address``: a cut password is a port."""
    said = []
    for parse in (lambda: urlsplit(address).port, lambda: mysql.parse_url(address)):
        try:
            parse()
        except ValueError as exc:
            said.append(f"{type(exc).__name__}: {exc}")
    return said


@settings(max_examples=200, deadline=None)
@given(hostile.filter(lambda s: not any(c.isspace() for c in s)),
       hostile.filter(lambda s: not any(c.isspace() for c in s)))  # fmt: skip
def test_free_text_holding_an_address_shows_no_password(first: str, second: str) -> None:
    """What the operator reads (a Job's last words) without knowing the address: each
    written whole among other words; a URL in a repr too."""
    secret = password(first, second)
    for form, written in ADDRESSES.items():
        address = written(secret)
        if form == "key=value, raw":  # a bare value is one word; this one may be split
            continue
        said = [f"stratum-writer: cannot connect to {address}: OSError", f"{address}\nTraceback"]
        if "://" in address:
            said.append(f"bad database URL {address!r}: x")
        for text in said:
            assert_hidden(redact_text(text), secret)


def test_what_an_address_shows() -> None:
    assert redact("postgresql://u:s3cr%23t@db:5432/shares?sslmode=require&sslpassword=k3y") == (
        "postgresql://u:***@db:5432/shares?sslmode=require&sslpassword=***"
    )
    assert redact("mysql://root@127.0.0.1:3306/t1") == "mysql://root@127.0.0.1:3306/t1"
    assert redact("sqlite:////var/lib/stratum/shares.db") == "sqlite:////var/lib/stratum/shares.db"
    assert redact("host=db dbname=shares password='a b\\' c' application_name='my app'") == (
        "host=db dbname=shares password=*** application_name='my app'"
    )
    # doesn't parse: scheme, host and database only, and it says so
    assert redact("postgresql://u:a#b@db:5432/shares") == (
        "postgresql://db/shares (the rest hidden: not a well-formed address)"
    )
    assert redact("host=db dbname=shares password='never closed") == (
        "host=db dbname=shares (the rest hidden: not a well-formed address)"
    )


def dead_database(secret: str) -> dict[str, str]:
    """Hostile addresses of a database that isn't there (a port nothing listens on)."""
    port = free_port()
    return {
        "raw #": f"postgresql://stratum:{secret}@127.0.0.1:{port}/shares",
        "raw / and @": f"postgresql://stratum:{secret}/x@y@127.0.0.1:{port}/shares",
        "password option": f"postgresql://stratum@127.0.0.1:{port}/shares?password={secret}",
        "mysql raw #": f"mysql://stratum:{secret}@127.0.0.1:{port}/shares",
        "key=value": f"host=127.0.0.1 port={port} dbname=shares password={libpq_quoted(secret)}",
    }


def test_a_writer_against_a_dead_database_logs_no_password(tmp_path: Path) -> None:
    secret = password("#", "' \\")
    failed = []
    for form, url in dead_database(secret).items():
        writer = WriterProcess(tmp_path / "spool", url)
        for command in (
            ["run"],
            ["migrate"],
            ["retain", "--share-days", "1", "--rollup-days", "1"],
        ):
            out = writer.run_command(*command)
            assert out.returncode != ExitCode.DONE, (form, command, out.stderr)
            assert out.stderr.strip(), (form, command)
            failed.append((form, command, out.stdout + out.stderr))
    for form, command, said in failed:
        for marker in MARKERS:
            assert marker not in said, (form, command, said)


def test_a_drain_job_waiting_for_a_dead_database_logs_no_password(tmp_path: Path) -> None:
    """``drain`` waits out a database that is down, logging each retry; SIGTERM ends it."""
    secret = password("#", "/")
    url = dead_database(secret)["raw #"]
    writer = WriterProcess(tmp_path / "spool", url)
    proc = subprocess.Popen(writer.command("drain"), env=writer.env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    time.sleep(4)  # retries after 1 s and 2 s
    proc.send_signal(signal.SIGTERM)
    said, _ = proc.communicate(timeout=30)
    assert proc.returncode == ExitCode.STOPPED_EARLY, said
    assert said.count("retrying in") >= 2, said
    for marker in MARKERS:
        assert marker not in said, said
