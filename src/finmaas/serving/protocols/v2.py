"""Open Inference Protocol (KServe V2) REST: inference bodies, JSON and binary.

Requests carry typed tensors. A tabular model takes either layout:

* **one tensor per feature**, named after it, shape ``[N]`` or ``[N, 1]``:
  ``BYTES`` for category and string features (the raw text), a numeric or
  ``BOOL`` datatype for the others; validated like V1 records, by the same
  rule and with the same messages, before the data is checked against the
  declared datatype;
* **one matrix** ``[N, n_features]`` of ``FP32``/``FP64`` holding already
  encoded features in signature order (a category as its index), any name.

The binary tensor data extension is supported both ways: when the request
has an ``Inference-Header-Content-Length`` header, the body is that many bytes
of JSON followed by the tensors whose ``parameters.binary_data_size`` is set,
in order (``BYTES`` elements are 4-byte little-endian length + bytes).
Outputs are returned in binary when the request asks for it per output
(``parameters.binary_data``) or for all (``parameters.binary_data_output``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson

from finmaas.errors import Invalid, SchemaMismatch
from finmaas.schema import RecordEncoder
from finmaas.schema.signature import ModelSignature
from finmaas.web.http import parse_json, reject_unknown_fields

V2_DTYPES: Mapping[str, np.dtype[Any]] = MappingProxyType(
    {
        "BOOL": np.dtype(np.bool_),
        "UINT8": np.dtype("<u1"),
        "UINT16": np.dtype("<u2"),
        "UINT32": np.dtype("<u4"),
        "UINT64": np.dtype("<u8"),
        "INT8": np.dtype("<i1"),
        "INT16": np.dtype("<i2"),
        "INT32": np.dtype("<i4"),
        "INT64": np.dtype("<i8"),
        "FP16": np.dtype("<f2"),
        "FP32": np.dtype("<f4"),
        "FP64": np.dtype("<f8"),
        "BYTES": np.dtype(object),
    }
)
FEATURE_DATATYPES = MappingProxyType(
    {"float": "FP64", "int": "INT64", "bool": "BOOL", "category": "BYTES", "string": "BYTES"}
)
MAX_DIMS = 8
REQUEST_FIELDS = frozenset({"id", "parameters", "inputs", "outputs"})
TENSOR_FIELDS = frozenset({"name", "datatype", "shape", "parameters", "data"})
OUTPUT_FIELDS = frozenset({"name", "parameters"})


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    typed: bool = True
    """False for JSON data not yet checked against the datatype: the values as sent
    (an object array), so that a feature's own rule judges them first."""


@dataclass(frozen=True)
class V2Request:
    id: str | None
    inputs: list[Tensor]
    outputs: list[tuple[str, bool]] | None
    """Requested outputs with their ``binary_data`` wish; None means all."""
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def binary_output(self) -> bool:
        return bool(self.parameters.get("binary_data_output", False))


def parse_v2_request(body: bytes, header_length: int | None) -> V2Request:
    if header_length is None:
        document, binary = parse_json(body, beyond_double=True), b""
    else:
        if not 0 < header_length <= len(body):
            raise Invalid(
                f"Inference-Header-Content-Length is {header_length} "
                f"but the body has {len(body)} bytes"
            )
        document, binary = (
            parse_json(body[:header_length], beyond_double=True),
            body[header_length:],
        )
    if not isinstance(document, dict):
        raise Invalid("request body must be a JSON object with 'inputs'")
    reject_unknown_fields(document, REQUEST_FIELDS, "the request body")
    raw_inputs = document.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise Invalid("request has no inputs")
    offset = 0
    inputs = []
    for raw in raw_inputs:
        tensor, used = _tensor(raw, binary, offset)
        inputs.append(tensor)
        offset += used
    if offset != len(binary):
        raise Invalid(f"binary section has {len(binary) - offset} bytes no input claims")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise Invalid("'id' must be a string")
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise Invalid("'parameters' must be an object")
    return V2Request(request_id, inputs, _requested(document.get("outputs")), parameters)


def _tensor(raw: Any, binary: bytes, offset: int) -> tuple[Tensor, int]:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise Invalid("each input must be an object with a 'name'")
    name = raw["name"]
    reject_unknown_fields(raw, TENSOR_FIELDS, f"input {name[:64]!r}")
    datatype = raw.get("datatype")
    dtype = V2_DTYPES.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise Invalid(f"input {name!r}: datatype {datatype!r} is not one of {', '.join(V2_DTYPES)}")
    assert isinstance(datatype, str)
    shape = raw.get("shape")
    if (
        not isinstance(shape, list)
        or not 0 < len(shape) <= MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise Invalid(
            f"input {name!r}: shape must be a list of 1 to {MAX_DIMS} non-negative integers"
        )
    count = math.prod(shape)
    tensor_parameters = raw.get("parameters") or {}
    if not isinstance(tensor_parameters, dict):
        raise Invalid(f"input {name!r}: 'parameters' must be an object")
    size = tensor_parameters.get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise Invalid(
                f"input {name!r}: binary_data_size {size!r} does not fit the binary section"
            )
        chunk = binary[offset : offset + size]
        data = _from_binary(name, datatype, dtype, chunk, count)
        return Tensor(name, datatype, tuple(shape), data), size
    if "data" not in raw:
        raise Invalid(f"input {name!r} has no 'data'")
    flat = _flatten(raw["data"])
    if len(flat) != count:
        raise Invalid(
            f"input {name!r}: shape {shape} holds {count} elements but data has {len(flat)}"
        )
    data = np.fromiter(flat, dtype=object, count=len(flat))
    return Tensor(name, datatype, tuple(shape), data, typed=False), 0


def conform(tensor: Tensor) -> Tensor:
    """The tensor with its data checked against and converted to its datatype."""
    if tensor.typed:
        return tensor
    dtype = V2_DTYPES[tensor.datatype]
    data = _from_json(tensor.name, tensor.datatype, dtype, tensor.data.tolist())
    return Tensor(tensor.name, tensor.datatype, tensor.shape, data)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    out: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        else:
            out.append(item)
    return out


def _from_json(name: str, datatype: str, dtype: np.dtype[Any], flat: list[Any]) -> np.ndarray:
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in flat):
            raise Invalid(f"input {name!r}: BYTES data must be strings")
        return np.array(flat, dtype=object)
    if datatype == "BOOL":
        if not all(isinstance(v, bool) for v in flat):
            raise Invalid(f"input {name!r}: BOOL data must be true or false")
        return np.array(flat, dtype=np.bool_)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat):
        raise Invalid(f"input {name!r}: {datatype} data must be numbers")
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        for v in flat:
            if isinstance(v, float) or not info.min <= v <= info.max:
                raise Invalid(f"input {name!r}: {v!r} is not a valid {datatype}")
        return np.array(flat, dtype=dtype)
    values = np.array(flat, dtype=np.float64)
    with np.errstate(over="ignore"):
        cast = values.astype(dtype)
    overflow = np.isinf(cast) & np.isfinite(values)
    if overflow.any():
        bad = flat[int(np.argmax(overflow))]
        raise Invalid(f"input {name!r}: {bad!r} is not a valid {datatype}")
    return cast


def _from_binary(
    name: str, datatype: str, dtype: np.dtype[Any], chunk: bytes, count: int
) -> np.ndarray:
    if datatype == "BYTES":
        values = []
        position = 0
        while position < len(chunk):
            if position + 4 > len(chunk):
                raise Invalid(f"input {name!r}: BYTES element length is cut short")
            length = int.from_bytes(chunk[position : position + 4], "little")
            position += 4
            if position + length > len(chunk):
                raise Invalid(f"input {name!r}: BYTES element is cut short")
            try:
                values.append(chunk[position : position + length].decode("utf-8"))
            except UnicodeDecodeError:
                raise Invalid(f"input {name!r}: BYTES element is not UTF-8 text") from None
            position += length
        if len(values) != count:
            raise Invalid(
                f"input {name!r}: shape holds {count} elements but data has {len(values)}"
            )
        return np.array(values, dtype=object)
    expected = count * dtype.itemsize
    if len(chunk) != expected:
        raise Invalid(
            f"binary data of input {name!r} is {len(chunk)} bytes, expected {expected} "
            f"for {count} elements of {datatype}"
        )
    return np.frombuffer(chunk, dtype=dtype)


def explain_parameters(request: V2Request) -> tuple[bool, int | None, bool]:
    """``parameters.explain`` (true adds explanation outputs), ``reasons`` and
    ``counterfactual``."""
    explain = request.parameters.get("explain", False)
    counterfactual = request.parameters.get("counterfactual", False)
    for name, value in (("explain", explain), ("counterfactual", counterfactual)):
        if not isinstance(value, bool):
            raise Invalid(f"parameter '{name}' must be true or false")
    reasons = request.parameters.get("reasons")
    if reasons is not None and (isinstance(reasons, bool) or not isinstance(reasons, int)):
        raise Invalid("parameter 'reasons' must be a whole number")
    for name, given in (("reasons", reasons is not None), ("counterfactual", counterfactual)):
        if given and not explain:
            raise Invalid(f"parameter '{name}' applies to explanations: add \"explain\": true")
    return explain, reasons, counterfactual


def _requested(outputs: Any) -> list[tuple[str, bool]] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise Invalid("'outputs' must be a list")
    requested = []
    for output in outputs:
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise Invalid("each requested output must be an object with a 'name'")
        reject_unknown_fields(output, OUTPUT_FIELDS, f"output {output['name'][:64]!r}")
        parameters = output.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise Invalid(f"output {output['name'][:64]!r}: 'parameters' must be an object")
        binary = bool(parameters.get("binary_data", False))
        requested.append((output["name"], binary))
    return requested


def tensors_to_array(
    request: V2Request, signature: ModelSignature, encoder: RecordEncoder, max_rows: int
) -> np.ndarray:
    """The model's encoded array from either documented layout."""
    names = signature.feature_names
    only = request.inputs[0] if len(request.inputs) == 1 else None
    if only is not None and (
        only.name not in names or (len(only.shape) == 2 and only.shape[1] == len(names) > 1)
    ):
        return _matrix(conform(only), signature, max_rows)
    columns: dict[str, np.ndarray] = {}
    rows: int | None = None
    for tensor in request.inputs:
        if tensor.name not in encoder.names:
            raise SchemaMismatch(f"unknown input {tensor.name!r}")
        if tensor.name in columns:
            raise Invalid(f"input {tensor.name!r} appears twice")
        if len(tensor.shape) > 2 or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise Invalid(
                f"input {tensor.name!r}: a feature tensor has shape [N] or [N, 1], "
                f"got {list(tensor.shape)}"
            )
        if rows is None:
            rows = tensor.shape[0]
        elif tensor.shape[0] != rows:
            raise Invalid(f"input {tensor.name!r} has {tensor.shape[0]} rows, the others {rows}")
        columns[tensor.name] = tensor.data.reshape(-1)
    missing = [name for name in names if name not in columns]
    if missing:
        raise SchemaMismatch(f"missing input {missing[0]!r}")
    assert rows is not None
    _check_rows(rows, max_rows)
    lists = {name: column.tolist() for name, column in columns.items()}
    records = [{name: lists[name][i] for name in names} for i in range(rows)]
    encoded = encoder.encode(records)  # each feature's rule first, as in every protocol
    for tensor in request.inputs:
        conform(tensor)  # then the datatype the client declared (3.5 is no INT64)
    return encoded


def _matrix(tensor: Tensor, signature: ModelSignature, max_rows: int) -> np.ndarray:
    width = len(signature.inputs)
    if (
        tensor.datatype not in ("FP32", "FP64")
        or len(tensor.shape) != 2
        or tensor.shape[1] != width
    ):
        raise Invalid(
            f"input {tensor.name!r}: an encoded matrix must be FP32 or FP64 of shape [N, {width}], "
            f"got {tensor.datatype} {list(tensor.shape)}"
        )
    _check_rows(tensor.shape[0], max_rows)
    x = np.asarray(tensor.data, dtype=np.float64).reshape(tensor.shape)
    for col, feature in enumerate(signature.inputs):
        column = x[:, col]
        missing = np.isnan(column)
        if missing.any() and not feature.nullable:
            raise SchemaMismatch(
                f"row {int(np.argmax(missing))}: null is not allowed for field {feature.name!r}"
            )
        present = column[~missing]
        if not np.isfinite(present).all():
            raise SchemaMismatch(f"field {feature.name!r} must be finite")
        if feature.dtype == "category":
            count = len(feature.categories or ())
            bad = (present < 0) | (present >= count) | (present != np.floor(present))
            if bad.any():
                raise SchemaMismatch(
                    f"field {feature.name!r} must be a category index from 0 to {count - 1}"
                )
        elif feature.dtype == "string":
            raise Invalid("a model with string features takes one tensor per feature")
        else:
            if feature.min is not None and present.size and present.min() < feature.min:
                raise SchemaMismatch(f"field {feature.name!r} must be ≥ {feature.min:g}")
            if feature.max is not None and present.size and present.max() > feature.max:
                raise SchemaMismatch(f"field {feature.name!r} must be ≤ {feature.max:g}")
    return x


def _check_rows(rows: int, max_rows: int) -> None:
    if rows == 0:
        raise Invalid("request has no rows")
    if rows > max_rows:
        raise Invalid(f"request has {rows} rows; the limit is {max_rows}")


def encode_v2_response(
    model_name: str,
    model_version: str,
    request: V2Request,
    outputs: Mapping[str, np.ndarray],
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when a binary section follows."""
    wanted = request.outputs or [(name, request.binary_output) for name in outputs]
    unknown = [name for name, _ in wanted if name not in outputs]
    if unknown:
        raise Invalid(f"requested output {unknown[0]!r} is not one of: {', '.join(outputs)}")
    described = []
    binary_parts: list[bytes] = []
    for name, binary in wanted:
        array = outputs[name]
        datatype = "BYTES" if array.dtype == object else "FP64"
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
        if binary or request.binary_output:
            raw = _to_binary(array, datatype)
            entry["parameters"] = {"binary_data_size": len(raw)}
            binary_parts.append(raw)
        else:
            entry["data"] = array.reshape(-1).tolist()
        described.append(entry)
    document: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        document["id"] = request.id
    document["outputs"] = described
    header = orjson.dumps(document)
    if not binary_parts:
        return header, None
    return header + b"".join(binary_parts), len(header)


def _to_binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            encoded = str(value).encode("utf-8")
            parts.append(len(encoded).to_bytes(4, "little") + encoded)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype="<f8").tobytes()


def model_metadata(
    name: str, versions: list[str], platform: str, signature: ModelSignature
) -> dict[str, Any]:
    inputs = [
        {"name": f.name, "datatype": FEATURE_DATATYPES[f.dtype], "shape": [-1]}
        for f in signature.inputs
    ]
    outputs: list[dict[str, Any]]
    if signature.task == "regression":
        outputs = [{"name": "value", "datatype": "FP64", "shape": [-1]}]
    elif signature.task == "binary":
        outputs = [
            {"name": "probability", "datatype": "FP64", "shape": [-1]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP64", "shape": [-1]},
        ]
    else:
        k = len(signature.classes or ())
        outputs = [
            {"name": "probability", "datatype": "FP64", "shape": [-1, k]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ]
    return {
        "name": name,
        "versions": versions,
        "platform": platform,
        "inputs": inputs,
        "outputs": outputs,
    }
