"""Which event loop runs the current task (for the few places that use asyncio's own API)."""

from __future__ import annotations

import asyncio


def on_asyncio() -> bool:
    """Say whether the calling code runs on an asyncio event loop (else: Trio, or none)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
