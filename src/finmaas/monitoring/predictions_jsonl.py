"""The prediction log in JSON Lines: one line per row, readable while it grows.

One file per model and worker at a time, ``<UTC date>T<time>Z-<pid>.jsonl``; a
file holds one UTC day and is closed at ``prediction_log_max_bytes``. Encoding
is Python work per row (about 5 µs for a 20-input row, measured), so at high
sampling rates the Parquet format costs the server much less.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import BinaryIO

import numpy as np
import orjson

from finmaas.monitoring.prediction_rows import (
    REDACTED,
    Masking,
    PendingRows,
    mask_text,
    new_file,
    timestamp,
)
from finmaas.monitoring.pseudonyms import pseudonym
from finmaas.schema.encoding import decode_column

CHUNK_BYTES = 64 * 1024
"""Lines are written in pieces of about this size, so the writer holds at most that
much encoded text, whatever the batch."""


class RowEncoder:
    """Turns pending rows into JSON lines: decode, mask, encode."""

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
                mask = hashed[value] = pseudonym(self.key, mask_text(value))
            out.append(mask)
        return out

    def encode(self, pending: PendingRows, write: Callable[[bytearray], None]) -> int:
        """Write the lines of ``pending``, in pieces of about ``CHUNK_BYTES``,
        through ``write``; returns how many lines.

        Columns are decoded and turned into JSON once for all the requests, and each
        line is one ``%`` of a template the signature fixes: building a dict per row
        for ``orjson`` costs more (measured). Lines are appended to a buffer that
        ``write`` empties every ``CHUNK_BYTES``: keeping thousands of ~1 KiB
        ``bytes`` alive to join them later costs several times the encoding
        (measured), and the buffer stays small whatever the batch.
        """
        signature = pending.signature
        x = pending.x[0] if len(pending) == 1 else np.concatenate(pending.x)
        scores = pending.scores[0] if len(pending) == 1 else np.concatenate(pending.scores)
        columns = []
        for j, feature in enumerate(signature.inputs):
            column = decode_column(feature, x[:, j])
            if feature.pii:
                columns.append(_json_values(self._mask(column), textual=True))
            else:
                columns.append(_json_values(column, textual=feature.dtype in _TEXT_DTYPES))
        dumps = orjson.dumps
        outputs = [dumps(output) for output in pending.rule.records(scores)]
        template = _line_template(signature.feature_names)
        values = zip(*columns, outputs, strict=True)
        model, version = dumps(pending.model), pending.version
        key_ids: dict[str | None, bytes] = {}
        out = bytearray()
        count = 0
        requests = zip(
            pending.at, pending.request_ids, pending.key_ids, pending.x, pending.rows, strict=True
        )
        for at, request, key, request_x, kept in requests:
            ts = timestamp(int(at * 1000))
            request_id = dumps(request)
            key_id = key_ids.get(key)
            if key_id is None:
                key_id = key_ids[key] = dumps(key)
            rows = range(len(request_x)) if kept is None else kept.tolist()
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


class JsonLinesFiles:
    """This worker's open file per model; rotates by UTC day and size."""

    def __init__(self, root: Path, max_bytes: int, encoder: RowEncoder) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.encoder = encoder
        self._open: dict[str, tuple[date, BinaryIO, int]] = {}

    def write(self, day: date, pending: PendingRows) -> int:
        """Append the rows of one version and UTC day; returns how many."""
        return self.encoder.encode(pending, functools.partial(self.append, pending.model, day))

    def append(self, model: str, day: date, chunk: bytes | bytearray) -> None:
        current = self._open.get(model)
        if current is not None:
            opened_day, handle, size = current
            if opened_day != day or (size + len(chunk) > self.max_bytes and size):
                handle.close()
                current = None
        if current is None:
            handle = new_file(self.root / model, day, ".jsonl").open("ab")
            opened_day, size = day, 0
        else:
            opened_day, handle, size = current
        handle.write(chunk)
        handle.flush()
        self._open[model] = (opened_day, handle, size + len(chunk))

    def close_expired(self) -> None:
        """Nothing to do: a JSON Lines file is readable while it grows."""

    def close(self) -> None:
        for _, handle, _ in self._open.values():
            handle.close()
        self._open.clear()


def read_rows(path: Path) -> Iterator[dict[str, object]]:
    """A file's rows; a last line a running server is still writing is left out."""
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return
            yield orjson.loads(line)
