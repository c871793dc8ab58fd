"""The prediction log: a sample of served rows, inputs and outputs, in files.

A model's ``log_sample_rate`` (``finmaas models update NAME --log-sample-rate``,
default 0: off) is the share of its served rows recorded. Each row reads::

    {"ts": "2026-11-22T19:40:01.123Z", "request_id": "…", "row": 0,
     "model": "credit-risk", "version": 3, "key_id": "0123456789abcdef",
     "inputs": {"duration_in_month": 24, "age_in_years": "5d41…", …},
     "outputs": {"probability": 0.31, "label": "good", "score": 612.4}}

Inputs are written as the client sent them (category text, not codes). An
input marked ``pii`` in the signature is never written: the ``pii_masking``
setting writes a keyed hash (:mod:`finmaas.monitoring.pseudonyms`; equal
values give equal hashes, so rows can still be joined and counted) or
``"[redacted]"``. A missing value stays null.

Files live in ``<home>/predictions/<model>/``, in the ``prediction_log_format``:
Parquet (default, :mod:`~finmaas.monitoring.predictions_parquet`: a fifth to a
quarter of the writer's CPU per row, readable once closed) or JSON Lines
(:mod:`~finmaas.monitoring.predictions_jsonl`: readable while it grows). Files
older than ``prediction_log_retention_days`` are deleted.

The request path appends a reference to the arrays it already has to its
version's lists (:class:`~finmaas.monitoring.prediction_rows.PendingRows`);
every ``FLUSH_INTERVAL`` the log's own thread decodes, masks, encodes and
writes them. One thread, always the same: the open files are touched by one
thread at a time, and the allocators' per-thread caches (glibc's arenas,
Arrow's mimalloc heaps) hold the writer's buffers once, not once per thread of
the shared pool it used to hop between, where a soak saw them creep up (Arrow's
resident memory went from 7 to 27 MB over 1,200 flushes on the pool, and stayed
at 8-10 MB on one thread, measured). The log is a sample, not a record
(decision records are the durable log): when a worker holds
``MAX_PENDING_ROWS`` unwritten rows, further rows are dropped and counted in
``finmaas_prediction_log_rows{outcome="dropped"}``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np

from finmaas.background import cancel, every
from finmaas.monitoring import predictions_jsonl, predictions_parquet
from finmaas.monitoring.prediction_rows import Masking, PendingRows
from finmaas.monitoring.predictions_jsonl import JsonLinesFiles, RowEncoder
from finmaas.monitoring.predictions_parquet import UNFINISHED, ArrowEncoder, ParquetFiles
from finmaas.schema.output_rule import DecisionRule
from finmaas.schema.signature import ModelSignature

log = logging.getLogger("finmaas.monitoring")

FLUSH_INTERVAL = 1.0
"""Seconds between writes: larger batches cost less per row (1,500 rows a batch cost
about 1.7 times as much per row as 7,500, measured), and a sample need not be prompt."""
MAX_PENDING_ROWS = 100_000
"""Rows a worker may hold unwritten before it drops new ones."""
PURGE_INTERVAL = 3600.0

WRITER_THREAD = "finmaas-prediction-log"
T = TypeVar("T")
LogFormat = Literal["parquet", "jsonl"]
_READERS: dict[str, Callable[[Path], Iterator[dict[str, Any]]]] = {
    ".jsonl": predictions_jsonl.read_rows,
    ".parquet": predictions_parquet.read_rows,
}


class LogSink(Protocol):
    """Where a format's rows go: this worker's open files."""

    def write(self, day: date, pending: PendingRows) -> int: ...

    def close_expired(self) -> None: ...

    def close(self) -> None: ...


def sample(rate: float, count: int) -> np.ndarray | Literal[False] | None:
    """Which of ``count`` rows to keep: all (None), none (False), or their indices."""
    if rate >= 1.0:
        return None
    if count == 1:
        return None if random.random() < rate else False  # noqa: S311 (sampling, not secrets)
    keep = np.flatnonzero(np.random.random(count) < rate)
    return keep if keep.size else False


def purge_files(root: Path, before: date) -> int:
    """Delete log files (finished or not) of days before ``before``; returns how many."""
    deleted = 0
    for pattern in (*(f"*/*{suffix}" for suffix in _READERS), f"*/*{UNFINISHED}"):
        for path in root.glob(pattern):
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
    """A model's readable log files of the days from ``since`` up to ``until`` (exclusive)."""
    return [path for path in _files(root, model, _READERS) if _in_days(path, since, until)]


def unfinished_files(root: Path, model: str, since: date | None, until: date | None) -> list[Path]:
    """A model's Parquet files still being written (or left by a worker that died)."""
    return [path for path in _files(root, model, (UNFINISHED,)) if _in_days(path, since, until)]


def _files(root: Path, model: str, suffixes: Iterable[str]) -> list[Path]:
    folder = root / model
    return sorted(path for suffix in suffixes for path in folder.glob(f"*{suffix}"))


def _in_days(path: Path, since: date | None, until: date | None) -> bool:
    day = file_day(path)
    if day is None or (since is not None and day < since):
        return False
    return until is None or day < until


def read_log(files: list[Path], version: int | None = None) -> Iterator[dict[str, Any]]:
    """The rows of ``files`` in time order, optionally of one version, whatever their
    format.

    Each file is in time order, and so is each writer's run of files (one worker's
    files of one version, or of one model for JSON Lines: the next opens when the
    last closes): each run is read one file after another, and the runs are merged.
    So an export opens one file per run at a time, not every file of its days (a
    worker makes over 1,700 a day at the default rotation)."""
    readers = (
        itertools.chain.from_iterable(_READERS[path.suffix](path) for path in run)
        for run in _runs(files)
    )
    rows = heapq.merge(*readers, key=lambda row: str(row["ts"]))
    for row in rows:
        if version is None or row.get("version") == version:
            yield row


_FILE_NAME = re.compile(r"(\d{4}-\d\d-\d\dT\d{6}Z)-(\d+)(?:-(\d+))?(\D.*)")
"""``<day>T<time>Z-<pid>[-<n>]<rest>`` (:func:`~finmaas.monitoring.prediction_rows.new_file`;
``n`` counts the files a worker opened within the same second)."""


def _runs(files: list[Path]) -> list[list[Path]]:
    """``files`` by the writer's run they belong to (its worker's pid and the rest of
    its name: ``-v3.parquet``, ``.jsonl``), each run in the order it was written."""
    runs: dict[str, list[tuple[str, int, str]]] = {}
    for path in files:
        named = _FILE_NAME.fullmatch(path.name)
        if named is None:  # not a name the log gives: a run of its own
            runs[str(path)] = [("", 0, str(path))]
            continue
        opened, pid, count, rest = named.groups()
        runs.setdefault(f"{pid}{rest}", []).append((opened, int(count or 0), str(path)))
    return [[Path(path) for *_, path in sorted(run)] for run in runs.values()]


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
        file_format: LogFormat = "parquet",
        rotate_seconds: float = 50.0,
        max_pending_rows: int = MAX_PENDING_ROWS,
    ) -> None:
        self.root = root
        self.files: LogSink = (
            ParquetFiles(root, max_bytes, rotate_seconds, ArrowEncoder(key, masking))
            if file_format == "parquet"
            else JsonLinesFiles(root, max_bytes, RowEncoder(key, masking))
        )
        self.retention = timedelta(days=retention_days)
        self.counted = counted
        self.max_pending_rows = max_pending_rows
        self._versions: dict[tuple[str, int], PendingRows] = {}
        self._pending = 0
        """Rows not yet written: those in ``_versions`` and those being written."""
        self._task: asyncio.Task[None] | None = None
        self._purged_at = -PURGE_INTERVAL
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=WRITER_THREAD)
        """Every file operation runs here (no thread starts before the first one)."""

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
        pending = self._versions.get((model, version))
        if pending is None:
            pending = self._versions[model, version] = PendingRows(model, version, signature, rule)
        pending.add(time.time(), request_id, key_id, x, scores, kept)

    async def start(self) -> None:
        self._task = every(
            FLUSH_INTERVAL,
            self._tend,
            name="finmaas-prediction-log",
            log=log,
            failed="prediction log upkeep failed",
        )

    async def close(self) -> None:
        await cancel(self._task)
        await self.flush()
        await self._in_writer(self.files.close)
        self._writer.shutdown(wait=False)

    async def _in_writer(self, work: Callable[..., T], *args: Any) -> T:
        """Run ``work`` on the log's own thread, after whatever it is doing."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, work, *args)

    async def flush(self) -> None:
        versions, self._versions = list(self._versions.values()), {}
        if not versions:
            return
        rows = sum(pending.count for pending in versions)
        try:
            written = await self._in_writer(self._write, versions)
        except Exception:
            log.exception("could not write %d prediction log rows", rows)
            written = {}
            for pending in versions:
                self.counted(pending.model, "dropped", pending.count)
        finally:
            self._pending -= rows
        for model, rows in written.items():
            self.counted(model, "written", rows)

    def _write(self, versions: list[PendingRows]) -> dict[str, int]:
        """Runs in a worker thread: one encoding per version and UTC day."""
        written: dict[str, int] = {}
        for pending in versions:
            for day, part in pending.by_day():
                count = self.files.write(day, part)
                written[part.model] = written.get(part.model, 0) + count
        return written

    async def _tend(self) -> None:
        """Each round: write what is pending, close the files due, purge once an hour."""
        await self.flush()
        try:
            await self._in_writer(self.files.close_expired)
        except OSError as exc:
            log.warning("could not close a prediction log file: %s", exc)
        if time.monotonic() - self._purged_at >= PURGE_INTERVAL:
            self._purged_at = time.monotonic()
            before = datetime.now(UTC).date() - self.retention
            try:
                purged = await self._in_writer(purge_files, self.root, before)
            except OSError as exc:
                log.warning("could not purge old prediction log files: %s", exc)
            else:
                if purged:
                    log.info("deleted %d prediction log files past their retention", purged)
