"""Test helper: wait for a condition, never for a fixed time.

A loaded machine (two cores shared by several test runs) can be ten times slower than an
idle one, so a test waits for what it needs to see, with a bound generous enough that only
a real fault reaches it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

GENEROUS = 60.0
"""The default bound, in seconds: far beyond what any condition takes on a busy machine."""


def wait_until(
    condition: Callable[[], object], timeout: float = GENEROUS, interval: float = 0.05
) -> bool:
    """Poll ``condition`` until it is true (then True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(interval)
    return True
