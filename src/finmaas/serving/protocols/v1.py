"""KServe V1 (``:predict``) request and response bodies.

Request: ``{"instances": [record, …]}`` (``"inputs"`` is accepted instead;
any other field is refused). A
record is an object keyed by feature name with raw values (categories as
their text), or a list of raw values in signature order.
Response: ``{"model_name", "model_version", "predictions": [{"probability",
"label", "score"}, …]}`` (``value`` for regression; ``probabilities`` per
class and ``label`` for multiclass).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from finmaas.errors import Invalid
from finmaas.schema import RecordEncoder
from finmaas.web.http import parse_json, reject_unknown_fields

V1_FIELDS = frozenset({"instances", "inputs"})


def decode_v1_request(body: bytes, encoder: RecordEncoder, max_rows: int) -> np.ndarray:
    document = parse_json(body, beyond_double=True)
    if not isinstance(document, dict):
        raise Invalid("request body must be a JSON object with 'instances'")
    reject_unknown_fields(document, V1_FIELDS, "the request body")
    key = "instances" if "instances" in document else "inputs" if "inputs" in document else None
    if key is None:
        raise Invalid("request body must have 'instances' (a list of records)")
    if len(document) > 1:
        raise Invalid("request body must have one of 'instances' or 'inputs', not both")
    rows = document[key]
    if not isinstance(rows, list):
        raise Invalid(f"'{key}' must be a list of records")
    if not rows:
        raise Invalid(f"'{key}' is empty; send at least one record")
    if len(rows) > max_rows:
        raise Invalid(f"request has {len(rows)} rows; the limit is {max_rows}")
    return encoder.encode(name_positional_rows(rows, encoder.names))


def name_positional_rows(rows: list[Any], names: tuple[str, ...]) -> list[Any]:
    """Turn rows given as lists of raw values (signature order) into records."""
    records: list[Any] = []
    for index, row in enumerate(rows):
        if isinstance(row, list):
            if len(row) != len(names):
                raise Invalid(
                    f"row {index}: a list record needs {len(names)} values in signature order, "
                    f"got {len(row)}"
                )
            records.append(dict(zip(names, row, strict=True)))
        else:
            records.append(row)
    return records


def encode_v1_response(name: str, version: int, predictions: list[dict[str, object]]) -> bytes:
    return orjson.dumps(
        {"model_name": name, "model_version": str(version), "predictions": predictions}
    )
