"""What the prediction log keeps of a request, whatever the file format."""

from __future__ import annotations

import functools
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import orjson

from finmaas.schema.output_rule import DecisionRule
from finmaas.schema.signature import ModelSignature

REDACTED = "[redacted]"

Masking = Literal["hash", "redact"]


class PendingRows:
    """One version's sampled rows waiting to be written, a list per field.

    The request path appends to these lists (:meth:`add`), so it creates no object
    per request that the garbage collector must follow. A tuple per request that
    held the signature stayed tracked until it was written, and every collection
    traversed the second's worth waiting: 0.6-0.9 µs of collection per logged
    request, measured, against none now. The signature and rule are kept once:
    a version's never change.
    """

    __slots__ = (
        "at",
        "count",
        "key_ids",
        "model",
        "request_ids",
        "rows",
        "rule",
        "scores",
        "signature",
        "version",
        "x",
    )

    def __init__(
        self, model: str, version: int, signature: ModelSignature, rule: DecisionRule
    ) -> None:
        self.model = model
        self.version = version
        self.signature = signature
        self.rule = rule
        self.at: list[float] = []
        """Per request: when it was served, in seconds since the epoch."""
        self.request_ids: list[str] = []
        self.key_ids: list[str | None] = []
        self.x: list[np.ndarray] = []
        """Per request: the encoded inputs of its sampled rows."""
        self.scores: list[np.ndarray] = []
        self.rows: list[np.ndarray | None] = []
        """Per request: the row numbers of its sampled rows; None when all were kept."""
        self.count = 0
        """Rows held, over all requests."""

    def add(
        self,
        at: float,
        request_id: str,
        key_id: str | None,
        x: np.ndarray,
        scores: np.ndarray,
        rows: np.ndarray | None,
    ) -> None:
        self.at.append(at)
        self.request_ids.append(request_id)
        self.key_ids.append(key_id)
        self.x.append(x)
        self.scores.append(scores)
        self.rows.append(rows)
        self.count += len(x)

    def __len__(self) -> int:
        """How many requests."""
        return len(self.at)

    def by_day(self) -> list[tuple[date, PendingRows]]:
        """The requests split by the UTC day they were served (nearly always one)."""
        days = np.array(self.at) // 86_400
        if (days == days[0]).all():
            return [(_day(days[0]), self)]
        parts: dict[float, PendingRows] = {}
        for i, day in enumerate(days.tolist()):
            part = parts.get(day)
            if part is None:
                part = parts[day] = PendingRows(self.model, self.version, self.signature, self.rule)
            part.add(
                self.at[i],
                self.request_ids[i],
                self.key_ids[i],
                self.x[i],
                self.scores[i],
                self.rows[i],
            )
        return [(_day(day), part) for day, part in parts.items()]


def _day(days: float) -> date:
    return datetime.fromtimestamp(days * 86_400, UTC).date()


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
