"""CSV request bodies (``Content-Type: text/csv``), as MLflow's scoring server takes them.

The first row names the columns (the signature's input names, in any order);
each further row is one record. Cells are read by
:func:`finmaas.schema.numbers.value_from_text` and then validated by the same
:class:`RecordEncoder` as JSON records, so a bad value gets the message a JSON
body would get (``row 2: field 'age' must be a number, got string 'old'``).
Parsed with the standard library's ``csv`` module, not pandas.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from finmaas.errors import Invalid
from finmaas.schema import RecordEncoder
from finmaas.schema.numbers import value_from_text
from finmaas.web.http import UnsupportedMediaType

CSV = b"text/csv"


def is_csv(content_type: bytes | None) -> bool:
    return content_type is not None and content_type.split(b";")[0].strip().lower() == CSV


def check_csv_content_type(content_type: bytes) -> None:
    """``text/csv`` with at most ``charset=utf-8``; MLflow refuses the rest with 415 too."""
    for parameter in content_type.decode("latin-1").split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        key, value = key.strip().lower(), value.strip().strip('"').lower()
        if key == "charset" and value not in ("utf-8", "utf8", "us-ascii"):
            raise UnsupportedMediaType(f"charset {value[:40]!r} is not supported; send UTF-8 CSV")
        if key not in ("charset", ""):
            raise UnsupportedMediaType(
                f"content type parameter {key[:40]!r} is not supported; send text/csv"
            )


def decode_csv_request(body: bytes, encoder: RecordEncoder, max_rows: int) -> np.ndarray:
    try:
        text = body.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise Invalid(
            f"CSV body is not UTF-8 text (an invalid byte at offset {exc.start})"
        ) from None
    if not text.strip():
        raise Invalid("request body is empty; expected CSV with a header row")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        rows = [row for row in reader if row]  # blank lines are skipped, as pandas does
    except csv.Error as exc:
        raise Invalid(f"malformed CSV at line {reader.line_num}: {exc}") from None
    dtypes = _check_header(header, encoder)
    if not rows:
        raise Invalid("the CSV body has a header but no rows")
    if len(rows) > max_rows:
        raise Invalid(f"request has {len(rows)} rows; the limit is {max_rows}")
    records = []
    width = len(header)
    for index, row in enumerate(rows):
        if len(row) != width:
            raise Invalid(f"CSV row {index} has {len(row)} values; the header has {width} columns")
        cells = zip(header, dtypes, row, strict=True)
        records.append({name: value_from_text(dtype, cell) for name, dtype, cell in cells})
    return encoder.encode(records)


def _check_header(header: list[str], encoder: RecordEncoder) -> list[str]:
    """Each column's dtype; refuses a nameless, repeated, unknown or missing column."""
    features = {feature.name: feature for feature in encoder.signature.inputs}
    seen: set[str] = set()
    for position, name in enumerate(header):
        if not name:
            raise Invalid(
                f"CSV header: column {position} has no name "
                "(an index? write the frame with DataFrame.to_csv(index=False))"
            )
        if name in seen:
            raise Invalid(f"CSV header: column {_clip(name)!r} appears twice")
        if name not in features:
            raise Invalid(f"CSV header: unknown column {_clip(name)!r}")
        seen.add(name)
    for name, feature in features.items():
        if name not in seen and not feature.nullable:
            raise Invalid(f"CSV header: missing column {name!r}")
    return [features[name].dtype for name in header]


def _clip(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
