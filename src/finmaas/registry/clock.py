"""The registry's clock: what stamps every row it writes and every audit entry.

A :class:`~finmaas.registry.registry.Registry` reads the wall clock in UTC;
tests hand it one they control.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
