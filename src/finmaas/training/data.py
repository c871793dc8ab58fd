"""Training data from a file: read CSV or Parquet, and refuse what cannot train.

:func:`read_table` reads a file as a DataFrame with its sha256 (recorded in the
lineage of every version trained on it). The format is told from the content,
not the name: Parquet starts and ends with ``PAR1``; anything else must be
UTF-8 text that pandas reads as CSV, delimited by commas, semicolons, tabs or
bars (whichever the header holds most of). :func:`check_binary_target` and
:func:`check_numeric_columns` give a clear error, naming the column and row,
before any training starts.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from finmaas.errors import Invalid

MAX_ROWS = 5_000_000
MAX_COLUMNS = 1_000
ROWS_PER_FOLD = 5
"""Rows of each class a fold needs, at least (so each held-out fold has some of both)."""
_PARQUET_MAGIC = b"PAR1"
_DELIMITERS = (",", ";", "\t", "|")
"""A CSV's delimiter is the one of these its header holds most of."""
_SHOWN = (",", ";", "tab", "|")


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    sha256: str
    """Of the file's bytes."""
    file_format: str
    """``csv`` or ``parquet``."""
    name: str


def read_table(path: Path, *, max_bytes: int) -> Table:
    """Read a CSV or Parquet file of at most ``max_bytes``; see the module."""
    shown = path.name
    if not path.is_file():
        raise Invalid(f"data file {shown!r} does not exist")
    size = path.stat().st_size
    if size > max_bytes:
        raise Invalid(f"data file {shown!r} is {size:,} bytes; the limit is {max_bytes:,}")
    data = path.read_bytes()
    if not data:
        raise Invalid(f"data file {shown!r} is empty")
    digest = hashlib.sha256(data).hexdigest()
    if data[:4] == _PARQUET_MAGIC and data[-4:] == _PARQUET_MAGIC:
        frame, file_format = _parquet(data, shown), "parquet"
    else:
        frame, file_format = _csv(data, shown), "csv"
    if frame.empty:
        raise Invalid(f"data file {shown!r} has no rows")
    if len(frame) > MAX_ROWS or frame.shape[1] > MAX_COLUMNS:
        raise Invalid(
            f"data file {shown!r} has {len(frame):,} rows and {frame.shape[1]:,} columns; "
            f"the limits are {MAX_ROWS:,} and {MAX_COLUMNS:,}"
        )
    duplicated = frame.columns[frame.columns.duplicated()]
    if len(duplicated):
        raise Invalid(f"data file {shown!r} has two columns named {str(duplicated[0])!r}")
    frame.columns = [str(column) for column in frame.columns]
    return Table(frame, digest, file_format, shown)


def _parquet(data: bytes, shown: str) -> pd.DataFrame:
    try:
        frame: pd.DataFrame = pq.read_table(pa.BufferReader(data)).to_pandas()
        return frame
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise Invalid(f"data file {shown!r} is not a readable Parquet file: {exc}") from None


def _csv(data: bytes, shown: str) -> pd.DataFrame:
    not_csv = f"data file {shown!r} is neither CSV nor Parquet"
    if b"\x00" in data[:65536]:
        raise Invalid(f"{not_csv}: it holds binary data")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{not_csv}: it is not UTF-8 text (byte {exc.start})") from None
    header = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=header.count)
    if not header.count(delimiter):
        raise Invalid(f"{not_csv}: its first line has no delimiter ({' '.join(_SHOWN)})")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Invalid(f"{not_csv}: {first}") from None
    return frame


def check_columns(frame: pd.DataFrame, names: list[str], what: str) -> None:
    """Every name is a column of ``frame``."""
    for name in names:
        if name not in frame.columns:
            shown = ", ".join(map(repr, list(frame.columns)[:20]))
            more = ", …" if frame.shape[1] > 20 else ""
            raise Invalid(f"data has no {what} column {name!r} (columns: {shown}{more})")


def check_binary_target(
    frame: pd.DataFrame, target: str, positive: str | None, folds: int
) -> tuple[str, str]:
    """The target's two classes as ``(negative, positive)`` text, after checking it has
    no missing value, exactly two classes, and enough rows of each for ``folds`` folds.

    ``positive`` is the adverse class, whose probability the model returns; without
    it, the classes must be ``good``/``bad`` or ``0``/``1`` (bad and 1 are adverse).
    """
    check_columns(frame, [target], "target")
    labels = frame[target]
    missing = labels.isna().to_numpy()
    if missing.any():
        raise Invalid(f"row {int(np.argmax(missing))}: target {target!r} is missing")
    text = labels.astype(str)
    counts = text.value_counts()
    if len(counts) < 2:
        raise Invalid(
            f"target {target!r} has one class ({counts.index[0]!r}); a binary model needs two"
        )
    if len(counts) > 2:
        shown = ", ".join(map(repr, sorted(counts.index)[:5]))
        raise Invalid(f"target {target!r} has {len(counts)} classes ({shown}…); it needs two")
    classes = set(counts.index)
    if positive is None:
        for negative, adverse in (("good", "bad"), ("0", "1")):
            if classes == {negative, adverse}:
                positive = adverse
        if positive is None:
            raise Invalid(
                f"target {target!r} has classes {sorted(classes)!r}: name the adverse one "
                "with --positive"
            )
    if positive not in classes:
        raise Invalid(f"--positive {positive!r} is not a class of {target!r}: {sorted(classes)!r}")
    negative = next(c for c in classes if c != positive)
    rarest = str(counts.idxmin())
    need = ROWS_PER_FOLD * folds
    if int(counts.min()) < need:
        raise Invalid(
            f"too few rows for {folds} folds: class {rarest!r} of {target!r} has "
            f"{int(counts.min())} rows; it needs at least {need} ({ROWS_PER_FOLD} per fold)"
        )
    return negative, positive


def check_numeric_columns(frame: pd.DataFrame, columns: list[str]) -> None:
    """A column whose values are mostly numbers must be all numbers (or missing):
    a stray ``"n/a"`` would otherwise turn it into a column of categories."""
    for name in columns:
        series = frame[name]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        present = series.dropna()
        numbers = pd.to_numeric(present, errors="coerce")
        bad = numbers.isna().to_numpy()
        if bad.sum() > 0 and bad.mean() < 0.5:
            row = int(present.index[int(np.argmax(bad))])
            raise Invalid(
                f"row {row}: column {name!r} holds numbers but this value is not one: "
                f"{str(present.iloc[int(np.argmax(bad))])[:40]!r}"
            )
