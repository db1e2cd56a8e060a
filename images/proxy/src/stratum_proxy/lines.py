"""Reading a connection's lines: one line, or why there can be no more; and the HTTP
CONNECT preamble (Loka-Stratum style) that picks a miner's route."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from stratum_proxy.closing import Closed, CloseReason, Side, stream_failure

_PREAMBLE_LINES = 32


async def read_line(reader: asyncio.StreamReader, side: Side) -> bytes:
    """One line, newline stripped; Closed (saying why) when there can be no more."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.LimitOverrunError:
        too_long = (
            CloseReason.MINER_LINE_TOO_LONG if side is Side.MINER
            else CloseReason.UPSTREAM_LINE_TOO_LONG
        )  # fmt: skip
        raise Closed(too_long) from None
    except asyncio.IncompleteReadError:
        raise stream_failure(side, None) from None
    except (ConnectionError, OSError) as exc:
        raise stream_failure(side, exc) from None
    return line.rstrip(b"\r\n")


async def preamble(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, routes: Collection[str]
) -> tuple[str, bytes | None]:
    """Pick the upstream list: an HTTP CONNECT preamble names a route; otherwise default.

    Returns the route name and, without a preamble, the miner's first line to process.
    The caller's handshake deadline bounds it.
    """
    first = await read_line(reader, Side.MINER)
    if not first.startswith(b"CONNECT "):
        return "", first
    parts = first.split()
    name = parts[1].decode(errors="replace") if len(parts) >= 2 else ""
    for _ in range(_PREAMBLE_LINES):  # the rest of the HTTP request head
        if not await read_line(reader, Side.MINER):
            break
    else:
        raise Closed(CloseReason.CONNECT_REFUSED, "the CONNECT preamble has no end")
    if name not in routes:
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        raise Closed(CloseReason.CONNECT_REFUSED, f"unknown pool {name[:64]!r}")
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    return name, None
