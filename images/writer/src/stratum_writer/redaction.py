"""Database addresses made fit to show: ``redact`` for an address, ``redact_text`` for any
text that may hold one or a piece of one (a log line, a driver's error, a Job's last words).

No credential appears in what they return, whatever its characters and however the
address was written:

- a URL (``scheme://user:pass@host:port/db?options``) that parses cleanly is shown whole,
  its password and every credential option masked (``user:***@``, ``password=***``);
- a key=value list (libpq's ``host=h password='a b\\' c'``) that parses is shown whole,
  every credential value masked;
- anything else (an unencoded ``#``, ``/``, ``?``, ``@``, ``&`` or space in a password, an
  unterminated quote, an option no client knows) shows only its scheme, host and
  database, read where no credential can be: past the last ``@`` and before the first
  credential option.

Options and keys are shown only when they are the clients' own (libpq's keywords, the
MySQL backend's ``ssl-mode`` and ``ssl-ca``): anything else may be the tail of a password
that held a ``&`` or a space.

A credential is the URL's password and any option or key whose name holds pass, pwd,
secret or token (password, sslpassword, passwd, ...).

This file exists twice, byte for byte: ``stratum_writer/redaction.py`` and
``stratum_operator/redaction.py`` (the operator reads Jobs' last words but can't import
the writer, another image); tests/operator/test_operator_redaction.py pins the copies.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import quote, unquote, urlsplit

__all__ = ["MASK", "redact", "redact_text"]

MASK = "***"
_NOT_WHOLE = " (the rest hidden: not a well-formed address)"
# libpq's keywords, and the MySQL backend's own options
KNOWN_OPTIONS = frozenset((
    "host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth",
    "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
    "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
    "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
    "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode",
    "sslrootcert", "sslcrl", "sslcrldir", "sslsni", "requirepeer",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "min_protocol_version",
    "max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service",
    "target_session_attrs", "load_balance_hosts", "ssl-mode", "ssl-ca",
))  # fmt: skip
_CREDENTIAL = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)
_CREDENTIAL_OPTION = re.compile(r"[\w.%-]*(?:pass|pwd|secret|token)[\w.%-]*\s*=", re.IGNORECASE)
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_KEY = re.compile(r"([A-Za-z_][\w.-]*)\s*=\s*")
_HOST = re.compile(r"\[[^\]\s]*\]|[^:/?#\s\[]*")
_PORT_DATABASE = re.compile(r"(?::(\d*))?(?:/([^/?#\s]*))?")
_USER = re.compile(r"([^:@/?#\s]*)[:@]")
_LOOSE_PAIR = re.compile(
    r"(?:^|\s)(host|hostaddr|server|dbname|database|user|port)\s*=\s*([^\s'\"\\]+)"
)
# the pieces a credential may be cut into by whoever quotes it: between the characters
# an address is parsed at (or their %-escapes), and each run of letters and digits
_SEPARATORS = re.compile(r"(?:%[0-9A-Fa-f]{2}|[\s:/?#@&=;,'\"\\()\[\]<>{}%])+")
_RUN = re.compile(r"[^\W_]+")
_SHORTEST_SECRET = 3  # a shorter piece can't be told from the text around it
# in free text: a URL-shaped word, or a credential=value pair (quoted or not) outside one
_IN_TEXT = re.compile(
    r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://\S+)"
    r"|(?P<key>[\w.%-]*(?:pass|pwd|secret|token)[\w.%-]*\s*=\s*)"
    r"(?:'(?:\\.|[^\\])*?(?:'(?=\s|$)|$)|\"(?:\\.|[^\\])*?(?:\"(?=\s|$)|$)"
    r"|(?:\\.|[^\s\\])*?(?=['\",;:.)]*(?:\s|$)))",
    re.IGNORECASE | re.DOTALL,
)
_TRAILING = "'\",;:.)]}>"  # punctuation after a URL in prose, not part of it


def redact(address: str) -> str:
    """``address`` with every credential masked, or, when it doesn't parse, only its
    scheme, host and database."""
    shown = _whole(address.strip())
    return shown if shown is not None else _bare(address.strip()) + _NOT_WHOLE


def redact_text(text: str, address: str | None = None) -> str:
    """``text`` with every address in it redacted and every credential=value pair masked;
    with ``address`` (the one in use), every piece of its credentials masked too, however
    a driver may have quoted or cut it."""
    if address and address.strip():
        text = text.replace(address.strip(), redact(address))
        for secret in sorted(_secrets(address), key=len, reverse=True):
            text = text.replace(secret, MASK)
    return _IN_TEXT.sub(_masked, text)


def _masked(match: re.Match[str]) -> str:
    if match["url"] is None:
        return match["key"] + MASK
    word = match["url"].rstrip(_TRAILING)
    return redact(word) + match["url"][len(word) :]


def _whole(address: str) -> str | None:
    """The address with its credentials masked, if it parses cleanly; else None."""
    if _SCHEME.match(address):
        return _url(address)
    pairs = _key_values(address)
    if not pairs:
        return None
    return " ".join(f"{k}={MASK}" if _CREDENTIAL.search(k) else f"{k}={_quoted(v)}"
                    for k, v in pairs)  # fmt: skip


def _url(address: str) -> str | None:
    """Clean: one ``@`` at most, in the authority; no fragment, no space or control
    character, a numeric port, options that are all key=value."""
    if any(c == "#" or c.isspace() or not c.isprintable() for c in address):
        return None
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 (raises ValueError on a port that isn't one)
    except ValueError:
        return None
    authority_end = len(parts.scheme) + 3 + len(parts.netloc)
    if parts.netloc.count("@") > 1 or "@" in address[authority_end:]:
        return None
    options = _options(parts.query)
    if options is None:
        return None
    user, at, host = parts.netloc.rpartition("@")
    if ":" in user:
        user = user.split(":", 1)[0] + ":" + MASK
    return f"{parts.scheme}://{user}{at}{host}{parts.path}" + (f"?{options}" if options else "")


def _options(query: str) -> str | None:
    if not query:
        return ""
    shown = []
    for option in query.split("&"):
        key, equals, _ = option.partition("=")
        if not equals or unquote(key).lower() not in KNOWN_OPTIONS:
            return None
        shown.append(f"{key}={MASK}" if _CREDENTIAL.search(unquote(key)) else option)
    return "&".join(shown)


def _key_values(text: str) -> list[tuple[str, str]] | None:
    """libpq's ``key=value`` list: values bare or single-quoted, ``\\`` escaping the next
    character in either; None unless the whole text is such a list."""
    pairs: list[tuple[str, str]] = []
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return pairs
        key = _KEY.match(text, at)
        if key is None or key[1].lower() not in KNOWN_OPTIONS:
            return None
        value, at = _value(text, key.end())
        if value is None:
            return None
        pairs.append((key[1], value))


def _value(text: str, at: int) -> tuple[str | None, int]:
    quoted = text.startswith("'", at)
    at += quoted
    value = []
    while at < len(text):
        char = text[at]
        if char == "\\":
            if at + 1 == len(text):
                return None, at
            value.append(text[at + 1])
            at += 2
            continue
        if (char == "'") if quoted else char.isspace():
            if quoted and not (at + 1 == len(text) or text[at + 1].isspace()):
                return None, at
            return "".join(value), at + quoted
        if not quoted and char == "'":
            return None, at
        value.append(char)
        at += 1
    return (None if quoted else "".join(value)), at


def _quoted(value: str) -> str:
    if value and not any(c.isspace() or c in "'\\" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _bare(address: str) -> str:
    return _read_bare(address)[0]


def _read_bare(address: str) -> tuple[str, list[str]]:
    """Scheme, host and database only, read before the first credential option and, in a
    URL, past the last ``@``: wherever a password's characters put it, it is not there.
    Empty parts are left out. Second: the user and port, known too though not shown (no
    credential either, whichever way the address is read)."""
    cut = _CREDENTIAL_OPTION.search(address)
    head = address[: cut.start()] if cut else address
    scheme = _SCHEME.match(head)
    if scheme is None:
        found = {k.lower(): v for k, v in _LOOSE_PAIR.findall(head)}
        host = found.get("host") or found.get("hostaddr") or found.get("server")
        database = found.get("dbname") or found.get("database")
        parts = [f"host={host}" if host else "", f"dbname={database}" if database else ""]
        known = [found.get("user", ""), found.get("port", "")]
        return " ".join(part for part in parts if part) or "(a database address)", known
    user = _USER.match(head, scheme.end())
    rest = head[scheme.end() :]
    rest = rest[rest.rfind("@") + 1 :]
    host = _HOST.match(rest)
    host_text = host[0] if host else ""
    tail = _PORT_DATABASE.match(rest, len(host_text))
    port, database = tail.groups() if tail else (None, None)
    shown = f"{scheme[1]}://{host_text}" + (f"/{database}" if database else "")
    return shown, [user[1] if user else "", port or ""]


@functools.lru_cache(maxsize=4)  # the address in use, read for every line said
def _secrets(address: str) -> frozenset[str]:
    """Every piece of ``address``, as written, decoded and encoded, that its redacted form
    doesn't show: its credentials, however a parser cut or quoted them."""
    whole = _whole(address.strip())
    if whole is not None:
        shown = set(_pieces(whole))
    else:
        bare, known = _read_bare(address.strip())
        shown = set(_pieces(" ".join([bare, *known])))
    found: set[str] = set()
    for form in (address, unquote(address), quote(unquote(address), safe="")):
        found.update(piece for piece in _pieces(form) if piece not in shown)
    return frozenset(s for s in found if len(s) >= _SHORTEST_SECRET)


def _pieces(text: str) -> list[str]:
    parts = [part for part in _SEPARATORS.split(text) if part]
    return parts + [run for part in parts for run in _RUN.findall(part)]
