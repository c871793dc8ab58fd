"""Work beside the request path: how a server's background tasks (writers,
refreshers) stop, and whether another process (a worker, a job) still runs."""

from __future__ import annotations

import asyncio
import contextlib
import os


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` and wait until it has stopped; nothing to do for None."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def process_alive(pid: int) -> bool:
    """Whether a process of this host with this pid exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
