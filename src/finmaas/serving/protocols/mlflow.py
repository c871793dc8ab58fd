"""MLflow scoring protocol (``POST /invocations``), so ``mlflow models serve`` clients work.

Accepted JSON bodies (as MLflow 2 documents them):

* ``{"dataframe_records": [{column: value, …}, …]}``
* ``{"dataframe_split": {"columns": [...], "data": [[...], …]}}``
* ``{"instances": [record or list, …]}``
* ``{"inputs": [record or list, …]}`` or ``{"inputs": {column: [values]}}``

each optionally with ``"params": {…}`` (MLflow ≥ 2.6). finmaas's tabular models
take no inference params: an empty or null ``params`` is accepted, a named
param is refused with 400 naming it. (MLflow itself logs a warning and ignores
params a model's signature does not declare; finmaas refuses them, as it
refuses every unknown field, so a param meant to change the answer cannot be
dropped unnoticed.) ``text/csv`` bodies are read by :mod:`.csv_body`.

The response is ``{"predictions": [...]}`` with one prediction object per row,
as finmaas's V1 endpoint gives. Errors are ``{"error_code", "message"}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from finmaas.errors import Invalid
from finmaas.schema import RecordEncoder
from finmaas.serving.protocols.csv_body import check_csv_content_type, is_csv
from finmaas.serving.protocols.v1 import name_positional_rows
from finmaas.web.http import (
    Request,
    UnsupportedMediaType,
    parse_json,
    reject_unknown_fields,
    require_json,
)

FORMATS = ("dataframe_records", "dataframe_split", "instances", "inputs")
FIELDS = frozenset({*FORMATS, "params"})


def require_mlflow_content_type(request: Request) -> bool:
    """True for a CSV body, False for JSON; 415 for anything else (as MLflow answers)."""
    content_type = request.header(b"content-type")
    if is_csv(content_type):
        assert content_type is not None
        check_csv_content_type(content_type)
        return True
    try:
        require_json(request)
    except UnsupportedMediaType as exc:
        raise UnsupportedMediaType(f"{exc}, or text/csv") from None
    return False


def decode_mlflow_request(body: bytes, encoder: RecordEncoder, max_rows: int) -> np.ndarray:
    document = parse_json(body, beyond_double=True)
    if not isinstance(document, dict):
        raise Invalid(f"request body must be a JSON object with one of: {', '.join(FORMATS)}")
    reject_unknown_fields(document, FIELDS, "the request body")
    check_params(document.get("params"))
    given = [key for key in FORMATS if key in document]
    if len(given) != 1:
        raise Invalid(f"request body must have exactly one of: {', '.join(FORMATS)}")
    key = given[0]
    records = _records(key, document[key], encoder.names)
    if not records:
        raise Invalid(f"'{key}' holds no rows")
    if len(records) > max_rows:
        raise Invalid(f"request has {len(records)} rows; the limit is {max_rows}")
    return encoder.encode(records)


def check_params(params: Any, accepted: frozenset[str] = frozenset()) -> None:
    """Refuse params the model does not take, naming them (ours take none today)."""
    if params is None:
        return
    if not isinstance(params, dict):
        raise Invalid("'params' must be an object of inference params")
    unknown = sorted(key for key in params if key not in accepted)
    if unknown:
        shown = ", ".join(repr(key[:64]) for key in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        noun = "param" if len(unknown) == 1 else "params"
        takes = f"takes only {', '.join(sorted(accepted))}" if accepted else "takes no params"
        raise Invalid(f"unknown {noun} {shown}{more}: this model {takes}")


def _records(key: str, value: Any, names: tuple[str, ...]) -> list[Any]:
    if key == "dataframe_split":
        if not isinstance(value, dict) or not isinstance(value.get("data"), list):
            raise Invalid("'dataframe_split' must be an object with 'columns' and 'data'")
        columns = value.get("columns", list(names))
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise Invalid("'dataframe_split.columns' must be a list of column names")
        out = []
        for index, row in enumerate(value["data"]):
            if not isinstance(row, list) or len(row) != len(columns):
                raise Invalid(
                    f"dataframe_split row {index} must be a list of {len(columns)} values"
                )
            out.append(dict(zip(columns, row, strict=True)))
        return out
    if key == "inputs" and isinstance(value, dict):
        lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise Invalid("'inputs' as an object must map each column to a list of equal length")
        (length,) = lengths
        return [{column: value[column][i] for column in value} for i in range(length)]
    if not isinstance(value, list):
        raise Invalid(f"'{key}' must be a list of records")
    return name_positional_rows(value, names)


def encode_mlflow_response(predictions: list[dict[str, object]]) -> bytes:
    return orjson.dumps({"predictions": predictions})


def encode_mlflow_error(status: int, message: str) -> bytes:
    code = {
        400: "BAD_REQUEST",
        404: "RESOURCE_DOES_NOT_EXIST",
        413: "BAD_REQUEST",
        415: "BAD_REQUEST",
        503: "TEMPORARILY_UNAVAILABLE",
    }
    return orjson.dumps({"error_code": code.get(status, "INTERNAL_ERROR"), "message": message})
