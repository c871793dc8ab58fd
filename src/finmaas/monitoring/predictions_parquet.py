"""The prediction log in Parquet: columns built with numpy, written without the GIL.

One file per model, version and worker at a time,
``<UTC date>T<time>Z-<pid>-v<version>.parquet``. Inputs are what the client sent
(category text, not codes), in a struct column ``inputs``; outputs in ``outputs``;
``ts`` is a UTC timestamp in milliseconds. Read back, a row equals the JSON Lines
row (tested).

A Parquet file can be read only once its footer is written, so a file is written
as ``….parquet.part`` and renamed when it is closed: ``prediction_log_rotate_seconds``
after it opened (50 by default, so a row can be exported within a minute of being
served), when a row of the next UTC day comes, at ``prediction_log_max_bytes`` of
rows (counted uncompressed, so the file on disk is smaller) and when the server
stops. Rows are kept in memory until ``ROW_GROUP_BYTES`` of them make a row group.
A worker that dies without stopping leaves its ``.part`` file unreadable: the log
is a sample, and that loses at most one rotation period of it.

Arrow allocates through the C library's allocator here (``ARROW_DEFAULT_MEMORY_POOL``
is set to ``system`` before pyarrow is first imported, unless the operator set it):
Arrow's bundled mimalloc kept the freed buffers of the log's writes for many
minutes (its mapping grew 5 -> 17 MB resident between minutes 10 and 20 of a
30-minute soak), while glibc's arenas are capped and trimmed by the server
(:mod:`finmaas.background`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # read once, at import
import pyarrow as pa
import pyarrow.parquet as pq

from finmaas.monitoring.prediction_rows import (
    REDACTED,
    Masking,
    PendingRows,
    mask_text,
    new_file,
    timestamp,
)
from finmaas.monitoring.pseudonyms import pseudonym
from finmaas.schema.encoding import decode_value
from finmaas.schema.output_rule import DecisionRule, credit_score
from finmaas.schema.signature import Feature

ROW_GROUP_BYTES = 8 * 1024**2
"""Rows (uncompressed) a file holds in memory before it writes them as a row group."""
UNFINISHED = ".part"
"""The suffix of a file still being written."""
COMPRESSION = "zstd"


class ArrowEncoder:
    """Turns one version's pending rows into an Arrow table: the columns are built from
    the encoded matrix with numpy and Arrow's ``take`` (category codes index their
    text), so the Python work per flush grows with the requests and inputs, not
    with the rows: 0.7-1.4 µs a row for the table, 1.5-1.9 with the Parquet write,
    against 5.5-9 for a JSON line (measured, 20 inputs)."""

    def __init__(self, key: bytes, masking: Masking) -> None:
        self.key = key
        self.masking = masking

    def table(self, pending: PendingRows) -> pa.Table:
        signature = pending.signature
        xs, kept = pending.x, pending.rows
        x = xs[0] if len(xs) == 1 else np.concatenate(xs)
        scores = pending.scores[0] if len(xs) == 1 else np.concatenate(pending.scores)
        counts = np.fromiter(map(len, xs), np.int64, len(xs))
        owner = np.repeat(np.arange(len(xs), dtype=np.int32), counts)
        millis = (np.array(pending.at) * 1000.0).astype(np.int64)[owner]
        if all(k is None for k in kept):
            starts = np.cumsum(counts) - counts
            rows = np.arange(len(x), dtype=np.int64) - np.repeat(starts, counts)
        else:
            rows = np.concatenate(
                [np.arange(len(part)) if k is None else k for part, k in zip(xs, kept, strict=True)]
            ).astype(np.int64)
        take = pa.array(owner)
        inputs = [
            self._masked(feature, x[:, j]) if feature.pii else _arrow_column(feature, x[:, j])
            for j, feature in enumerate(signature.inputs)
        ]
        return pa.table(
            {
                "ts": pa.array(millis, pa.timestamp("ms", tz="UTC")),
                "request_id": pa.array(pending.request_ids, pa.string()).take(take),
                "row": pa.array(rows),
                "model": pa.repeat(pa.scalar(pending.model, pa.string()), len(x)),
                "version": pa.array(np.full(len(x), pending.version, dtype=np.int32)),
                "key_id": pa.array(pending.key_ids, pa.string()).take(take),
                "inputs": pa.StructArray.from_arrays(inputs, names=list(signature.feature_names)),
                "outputs": _arrow_outputs(pending.rule, scores),
            }
        )

    def _masked(self, feature: Feature, column: np.ndarray) -> pa.Array:
        """A pii column's masks: each distinct value is hashed once."""
        import pandas as pd  # on the first masked write only: a worker starts without pandas

        codes, uniques = pd.factorize(column if feature.dtype == "string" else column.astype(float))
        if self.masking == "redact":
            masks = [REDACTED]
            codes = np.minimum(codes, 0)
        else:
            masks = [pseudonym(self.key, mask_text(decode_value(feature, u))) for u in uniques]
        missing = codes < 0
        mask = missing if missing.any() else None
        indices = pa.array(np.maximum(codes, 0).astype(np.int32), mask=mask)
        return pa.array(masks, pa.string()).take(indices)


def _arrow_column(feature: Feature, column: np.ndarray) -> pa.Array:
    """An encoded column as an Arrow array of what the client sent (:func:`decode_column`)."""
    if feature.dtype == "string":
        return pa.array(column, pa.string())
    codes = column.astype(np.float64, copy=False)
    missing = np.isnan(codes)
    mask = missing if missing.any() else None
    if feature.dtype == "category":
        indices = pa.array(np.where(missing, 0, codes).astype(np.int32), mask=mask)
        return pa.array(feature.categories, pa.string()).take(indices)
    if feature.dtype == "bool":
        return pa.array(codes == 1.0, mask=mask)
    if feature.dtype == "int":
        return pa.array(np.where(missing, 0, codes).astype(np.int64), mask=mask)
    return pa.array(codes, mask=mask)


def _arrow_outputs(rule: DecisionRule, scores: np.ndarray) -> pa.StructArray:
    """The outputs :meth:`DecisionRule.records` gives, as columns."""
    if rule.task == "regression":
        return pa.StructArray.from_arrays([pa.array(scores, pa.float64())], names=["value"])
    classes = pa.array(rule.classes, pa.string())
    if rule.task == "binary":
        label = (scores >= rule.threshold).astype(np.int32)
        return pa.StructArray.from_arrays(
            [
                pa.array(scores, pa.float64()),
                classes.take(pa.array(label)),
                pa.array(credit_score(scores), pa.float64()),
            ],
            names=["probability", "label", "score"],
        )
    probabilities = pa.StructArray.from_arrays(
        [pa.array(scores[:, i], pa.float64()) for i in range(len(rule.classes))],
        names=list(rule.classes),
    )
    best = np.argmax(scores, axis=1).astype(np.int32)
    return pa.StructArray.from_arrays(
        [probabilities, classes.take(pa.array(best))],
        names=["probabilities", "label"],
    )


@dataclass
class _OpenFile:
    path: Path
    day: date
    opened: float
    """The files' clock (``time.monotonic()``) when it was created."""
    writer: pq.ParquetWriter | None = None
    pending: list[pa.Table] = field(default_factory=list)
    pending_bytes: int = 0
    size: int = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_bytes += table.nbytes
        self.size += table.nbytes
        if self.pending_bytes >= ROW_GROUP_BYTES:
            self.write_pending()

    def write_pending(self) -> None:
        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.path), table.schema, compression=COMPRESSION)
        self.writer.write_table(table)
        self.pending, self.pending_bytes = [], 0

    def finish(self) -> None:
        """Write what is left, the footer, and give the file its readable name."""
        self.write_pending()
        assert self.writer is not None  # a file is made for rows, and rows were added
        self.writer.close()
        os.replace(self.path, self.path.with_suffix(""))


class ParquetFiles:
    """This worker's open file per model and version; see the module for rotation."""

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        rotate_seconds: float,
        encoder: ArrowEncoder,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.rotate_seconds = rotate_seconds
        self.encoder = encoder
        self.clock = clock
        self._open: dict[tuple[str, int], _OpenFile] = {}

    def write(self, day: date, pending: PendingRows) -> int:
        """Add the rows of one version and UTC day; returns how many."""
        table = self.encoder.table(pending)
        model, version = key = (pending.model, pending.version)
        current = self._open.get(key)
        if current is not None and (
            current.day != day or (current.size + table.nbytes > self.max_bytes and current.size)
        ):
            del self._open[key]
            current.finish()
            current = None
        if current is None:
            path = new_file(self.root / model, day, f"-v{version}.parquet", UNFINISHED)
            current = self._open[key] = _OpenFile(path, day, self.clock())
        current.add(table)
        return len(table)

    def close_expired(self) -> None:
        """Close the files open for ``rotate_seconds`` or more, so they can be read."""
        now = self.clock()
        for key, current in list(self._open.items()):
            if now - current.opened >= self.rotate_seconds:
                del self._open[key]
                current.finish()

    def close(self) -> None:
        files, self._open = list(self._open.values()), {}
        for current in files:
            current.finish()


def read_rows(path: Path) -> Iterator[dict[str, object]]:
    """A file's rows, as the JSON Lines format gives them."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        millis = batch.column("ts").cast(pa.int64()).to_pylist()
        rest = batch.drop_columns(["ts"]).to_pylist()
        for ms, row in zip(millis, rest, strict=True):
            yield {"ts": timestamp(ms).decode(), **row}
