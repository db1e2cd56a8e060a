"""The event loop every process of ours runs on: uvloop where installed (both images
install it; it moves lines and spool writes faster), the standard loop otherwise."""

from __future__ import annotations

import asyncio
import contextlib


def prefer_uvloop() -> None:
    """Call before ``asyncio.run``."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
