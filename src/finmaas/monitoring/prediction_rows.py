"""What the prediction log keeps of a request, whatever the file format."""

from __future__ import annotations

import functools
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import orjson

from finmaas.schema.signature import ModelSignature
from finmaas.serving.decisions import DecisionRule

REDACTED = "[redacted]"

Masking = Literal["hash", "redact"]


class Entry(NamedTuple):
    """What the request path hands over: one request's sampled rows."""

    at: float
    request_id: str
    key_id: str | None
    model: str
    version: int
    signature: ModelSignature
    rule: DecisionRule
    x: np.ndarray
    scores: np.ndarray
    rows: np.ndarray | None
    """Row numbers in the request of the sampled rows; None when every row was kept."""


def mask_text(value: object) -> str:
    """The text a pii value is hashed as: itself for text, its JSON otherwise; both
    formats hash the same text, so a value has one pseudonym."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def timestamp(millis: int) -> bytes:
    """``2026-11-22T19:40:01.123Z`` from milliseconds since the epoch."""
    seconds, milliseconds = divmod(millis, 1000)
    return b"%b.%03dZ" % (_second(seconds), milliseconds)


@functools.lru_cache(maxsize=256)
def _second(seconds: int) -> bytes:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()


def new_file(folder: Path, day: date, name: str, unfinished: str = "") -> Path:
    """Create an empty file of this worker's, private to the server user, in ``folder``
    (made if need be): ``<day>T<time>Z-<pid><name><unfinished>``, with a number after
    the pid if that name, finished or not, is taken."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = f"{day.isoformat()}T{datetime.now(UTC):%H%M%S}Z-{os.getpid()}"
    for attempt in range(1000):
        final = folder / (f"{stamp}{name}" if attempt == 0 else f"{stamp}-{attempt}{name}")
        if unfinished and final.exists():
            continue
        path = final.with_name(final.name + unfinished)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            continue
        return path
    raise OSError(f"could not name a new prediction log file in {folder}")
