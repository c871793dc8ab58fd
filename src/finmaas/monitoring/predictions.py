"""The prediction log: a sample of served rows, inputs and outputs, in JSON Lines files.

A model's ``log_sample_rate`` (``finmaas models update NAME --log-sample-rate``,
default 0: off) is the share of its served rows recorded. One line per row::

    {"ts": "2026-11-22T19:40:01.123Z", "request_id": "…", "row": 0,
     "model": "credit-risk", "version": 3, "key_id": "0123456789abcdef",
     "inputs": {"duration_in_month": 24, "age_in_years": "5d41…", …},
     "outputs": {"probability": 0.31, "label": "good", "score": 612.4}}

Inputs are written as the client sent them (category text, not codes). An
input marked ``pii`` in the signature is never written: the ``pii_masking``
setting writes a keyed hash (:mod:`finmaas.monitoring.pseudonyms`; equal
values give equal hashes, so rows can still be joined and counted) or
``"[redacted]"``. A missing value stays ``null``.

Files live in ``<home>/predictions/<model>/``, one per worker at a time, named
``<UTC date>T<time>Z-<pid>.jsonl``; a file holds one UTC day and is closed at
``prediction_log_max_bytes``. Files older than ``prediction_log_retention_days``
are deleted.

The request path appends a reference to the arrays it already has to a list;
every ``FLUSH_INTERVAL`` a worker thread decodes, masks, encodes and writes
them. The log is a sample, not a record (decision records are the durable
log): when a worker holds ``MAX_PENDING_ROWS`` unwritten rows, further rows
are dropped and counted in ``finmaas_prediction_log_rows{outcome="dropped"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Literal, NamedTuple

import numpy as np
import orjson

from finmaas.background import cancel
from finmaas.monitoring.pseudonyms import pseudonym
from finmaas.schema.encoding import decode_column
from finmaas.schema.signature import ModelSignature
from finmaas.serving.decisions import DecisionRule

log = logging.getLogger("finmaas.monitoring")

FLUSH_INTERVAL = 1.0
"""Seconds between writes: larger batches cost less per row (1,500 rows a batch cost
about 1.7 times as much per row as 7,500, measured), and a sample need not be prompt."""
MAX_PENDING_ROWS = 100_000
"""Rows a worker may hold unwritten before it drops new ones."""
REDACTED = "[redacted]"
PURGE_INTERVAL = 3600.0
CHUNK_BYTES = 64 * 1024
"""Lines are written in pieces of about this size, so the writer holds at most that
much encoded text, whatever the batch."""

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


def sample(rate: float, count: int) -> np.ndarray | Literal[False] | None:
    """Which of ``count`` rows to keep: all (None), none (False), or their indices."""
    if rate >= 1.0:
        return None
    if count == 1:
        return None if random.random() < rate else False  # noqa: S311 (sampling, not secrets)
    keep = np.flatnonzero(np.random.random(count) < rate)
    return keep if keep.size else False


class RowEncoder:
    """Turns entries into JSON lines: decode, mask, encode."""

    def __init__(self, key: bytes, masking: Masking) -> None:
        self.key = key
        self.masking = masking

    def _mask(self, values: list[object]) -> list[object]:
        """A pii column masked; each distinct value is hashed once (a column holds one type)."""
        if self.masking == "redact":
            return [None if v is None else REDACTED for v in values]
        hashed: dict[object, str | None] = {None: None}
        out: list[object] = []
        for value in values:
            mask = hashed.get(value)
            if mask is None and value is not None:
                text = value if isinstance(value, str) else orjson.dumps(value).decode()
                mask = hashed[value] = pseudonym(self.key, text)
            out.append(mask)
        return out

    def encode(self, entries: list[Entry], write: Callable[[bytearray], None]) -> int:
        """Write the lines of entries of one version, in pieces of about
        ``CHUNK_BYTES``, through ``write``; returns how many lines.

        Columns are decoded and turned into JSON once for all the entries, and each
        line is one ``%`` of a template the signature fixes: building a dict per row
        for ``orjson`` costs more (measured). Lines are appended to a buffer that
        ``write`` empties every ``CHUNK_BYTES``: keeping thousands of ~1 KiB
        ``bytes`` alive to join them later costs several times the encoding
        (measured), and the buffer stays small whatever the batch.
        """
        first = entries[0]
        signature = first.signature
        x = first.x if len(entries) == 1 else np.concatenate([e.x for e in entries])
        scores = first.scores if len(entries) == 1 else np.concatenate([e.scores for e in entries])
        columns = []
        for j, feature in enumerate(signature.inputs):
            column = decode_column(feature, x[:, j])
            if feature.pii:
                columns.append(_json_values(self._mask(column), textual=True))
            else:
                columns.append(_json_values(column, textual=feature.dtype in _TEXT_DTYPES))
        dumps = orjson.dumps
        outputs = [dumps(output) for output in first.rule.records(scores)]
        template = _line_template(signature.feature_names)
        values = zip(*columns, outputs, strict=True)
        model, version = dumps(first.model), first.version  # one version per call
        key_ids: dict[str | None, bytes] = {}
        out = bytearray()
        count = 0
        for entry in entries:
            ts = _timestamp(entry.at)
            request_id = dumps(entry.request_id)
            key_id = key_ids.get(entry.key_id)
            if key_id is None:
                key_id = key_ids[entry.key_id] = dumps(entry.key_id)
            rows = range(len(entry.x)) if entry.rows is None else entry.rows.tolist()
            for row in rows:
                out += template % (ts, request_id, row, model, version, key_id, *next(values))
                if len(out) >= CHUNK_BYTES:
                    write(out)
                    out.clear()
            count += len(rows)
        if out:
            write(out)
        return count


_TEXT_DTYPES = frozenset({"string", "category"})


def _json_values(values: list[object], *, textual: bool) -> list[bytes]:
    """Each value of a column as JSON. Numbers, booleans and nulls are dumped as one
    list and split at its commas (none of them holds one); text is dumped once per
    distinct value."""
    if not values:
        return []
    if not textual:
        return orjson.dumps(values)[1:-1].split(b",")
    dumped = {value: orjson.dumps(value) for value in set(values)}
    return [dumped[value] for value in values]


@functools.lru_cache(maxsize=64)
def _line_template(names: tuple[str, ...]) -> bytes:
    """A line with these input names: its fields are ``%`` slots for the JSON of the
    time, request id, row, model, version, key id, each input and the outputs."""
    fields = b",".join(orjson.dumps(name).replace(b"%", b"%%") + b":%b" for name in names)
    head = b'{"ts":"%b","request_id":%b,"row":%d,"model":%b,"version":%d,"key_id":%b'
    return head + b',"inputs":{' + fields + b'},"outputs":%b}\n'


def _timestamp(at: float) -> bytes:
    """``2026-11-22T19:40:01.123Z``."""
    seconds, milliseconds = divmod(int(at * 1000), 1000)
    return b"%b.%03dZ" % (_second(seconds), milliseconds)


@functools.lru_cache(maxsize=256)
def _second(seconds: int) -> bytes:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S").encode()


class LogFiles:
    """This worker's open file per model; rotates by UTC day and size."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._open: dict[str, tuple[date, BinaryIO, int]] = {}

    def write(self, model: str, day: date, chunk: bytes | bytearray) -> None:
        current = self._open.get(model)
        if current is not None:
            opened_day, handle, size = current
            if opened_day != day or (size + len(chunk) > self.max_bytes and size):
                handle.close()
                current = None
        if current is None:
            handle = self._new_file(model, day)
            opened_day, size = day, 0
        else:
            opened_day, handle, size = current
        handle.write(chunk)
        handle.flush()
        self._open[model] = (opened_day, handle, size + len(chunk))

    def _new_file(self, model: str, day: date) -> BinaryIO:
        folder = self.root / model
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = f"{day.isoformat()}T{datetime.now(UTC):%H%M%S}Z-{os.getpid()}"
        for attempt in range(1000):
            name = stamp if attempt == 0 else f"{stamp}-{attempt}"
            with contextlib.suppress(FileExistsError):
                return (folder / f"{name}.jsonl").open("xb")
        raise OSError(f"could not name a new prediction log file in {folder}")

    def close(self) -> None:
        for _, handle, _ in self._open.values():
            handle.close()
        self._open.clear()


def purge_files(root: Path, before: date) -> int:
    """Delete log files of days before ``before``; returns how many."""
    deleted = 0
    for path in root.glob("*/*.jsonl"):
        day = file_day(path)
        if day is not None and day < before:
            path.unlink(missing_ok=True)
            deleted += 1
    return deleted


def file_day(path: Path) -> date | None:
    """The UTC day a log file holds, from its name (None for a file not ours)."""
    try:
        return date.fromisoformat(path.name[:10])
    except ValueError:
        return None


def log_files(root: Path, model: str, since: date | None, until: date | None) -> list[Path]:
    """A model's log files of the days from ``since`` up to ``until`` (exclusive)."""
    out = []
    for path in sorted((root / model).glob("*.jsonl")):
        day = file_day(path)
        if day is None or (since is not None and day < since):
            continue
        if until is None or day < until:
            out.append(path)
    return out


def read_log(files: list[Path], version: int | None = None) -> Iterator[dict[str, Any]]:
    """The rows of ``files`` in time order (each file is; they are merged), optionally
    of one version. A last line a running server is still writing is left out."""
    rows = heapq.merge(*map(_rows_of, files), key=lambda row: str(row["ts"]))
    for row in rows:
        if version is None or row.get("version") == version:
            yield row


def _rows_of(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return
            yield orjson.loads(line)


class PredictionLog:
    """Buffers sampled rows on the request path and writes them off it."""

    def __init__(
        self,
        root: Path,
        *,
        key: bytes,
        masking: Masking,
        max_bytes: int,
        retention_days: int,
        counted: Callable[[str, str, int], None],
        max_pending_rows: int = MAX_PENDING_ROWS,
    ) -> None:
        self.root = root
        self.encoder = RowEncoder(key, masking)
        self.files = LogFiles(root, max_bytes)
        self.retention = timedelta(days=retention_days)
        self.counted = counted
        self.max_pending_rows = max_pending_rows
        self._entries: list[Entry] = []
        self._pending = 0
        self._task: asyncio.Task[None] | None = None
        self._purged_at = -PURGE_INTERVAL

    @property
    def backlog(self) -> int:
        """Rows waiting to be written."""
        return self._pending

    def record(
        self,
        rate: float,
        *,
        request_id: str,
        key_id: str | None,
        model: str,
        version: int,
        signature: ModelSignature,
        rule: DecisionRule,
        x: np.ndarray,
        scores: np.ndarray,
    ) -> None:
        kept = sample(rate, len(x))
        if kept is False:
            return
        if kept is not None:
            x, scores = x[kept], scores[kept]
        count = len(x)
        if self._pending + count > self.max_pending_rows:
            self.counted(model, "dropped", count)
            return
        self._pending += count
        self._entries.append(
            Entry(time.time(), request_id, key_id, model, version, signature, rule, x, scores, kept)
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="finmaas-prediction-log")

    async def close(self) -> None:
        await cancel(self._task)
        await self.flush()
        await asyncio.to_thread(self.files.close)

    async def flush(self) -> None:
        entries, self._entries = self._entries, []
        if not entries:
            return
        try:
            written = await asyncio.to_thread(self._write, entries)
        except Exception:
            log.exception("could not write %d prediction log entries", len(entries))
            written = {}
            for entry in entries:
                self.counted(entry.model, "dropped", len(entry.x))
        finally:
            self._pending -= sum(len(entry.x) for entry in entries)
        for model, rows in written.items():
            self.counted(model, "written", rows)

    def _write(self, entries: list[Entry]) -> dict[str, int]:
        """Runs in a worker thread: one decode per version and UTC day."""
        groups: dict[tuple[str, int, date], list[Entry]] = {}
        for entry in entries:
            day = datetime.fromtimestamp(entry.at, UTC).date()
            groups.setdefault((entry.model, entry.version, day), []).append(entry)
        written: dict[str, int] = {}
        for (model, _, day), group in groups.items():
            count = self.encoder.encode(group, functools.partial(self.files.write, model, day))
            written[model] = written.get(model, 0) + count
        return written

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()
            if time.monotonic() - self._purged_at >= PURGE_INTERVAL:
                self._purged_at = time.monotonic()
                before = datetime.now(UTC).date() - self.retention
                try:
                    purged = await asyncio.to_thread(purge_files, self.root, before)
                except OSError as exc:
                    log.warning("could not purge old prediction log files: %s", exc)
                else:
                    if purged:
                        log.info("deleted %d prediction log files past their retention", purged)
