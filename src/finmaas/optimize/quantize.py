"""Quantisation of an ONNX network with ONNX Runtime's tools.

* ``dynamic``: weights of every ``MatMul`` and ``Gemm`` stored as int8; activations
  are quantised on the fly, per batch. No data needed.
* ``static``: weights and activations int8, with the activations' ranges
  calibrated on rows of the reference data (MinMax), in QDQ form, which ONNX
  Runtime fuses into integer kernels.
* ``float16``: every float weight stored as float16 (half the size), inputs and
  outputs kept float32. On most CPUs it is smaller but not faster.

Only the dense layers are quantised: an embedding ``Gather`` reads a few rows
per applicant, where int8 would add a dequantisation and save nothing. A graph
with no dense layer (a tree ensemble) is refused: it has nothing to quantise.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from numpy.typing import NDArray

from finmaas.errors import Invalid

QuantizeMode = Literal["dynamic", "static", "float16"]
MODES: tuple[QuantizeMode, ...] = ("dynamic", "static", "float16")
DENSE_OPS = ("MatMul", "Gemm")
CALIBRATION_ROWS = 2_000
CALIBRATION_BATCH = 64


def quantize(
    data: bytes, x_calibration: NDArray[np.float64], mode: QuantizeMode
) -> tuple[bytes, dict[str, Any]]:
    """The quantised model's bytes, and what was done (for the version's params)."""
    if mode not in MODES:
        raise Invalid(f"quantisation mode must be one of {', '.join(MODES)}, got {mode!r}")
    model = onnx.load_from_string(data)
    for index, node in enumerate(model.graph.node):
        # the tools name what they add after the node; unnamed nodes would clash
        node.name = node.name or f"{node.op_type}_{index}"
    data = model.SerializeToString()
    dense = [node.name or node.op_type for node in model.graph.node if node.op_type in DENSE_OPS]
    if not dense:
        raise Invalid(
            "nothing to quantise: the ONNX graph has no MatMul or Gemm layer (a tree "
            "ensemble has none); use --method prune or --method distill instead"
        )
    if mode == "float16":
        return _float16(model), {"mode": mode, "dense_layers": len(dense)}
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    with tempfile.TemporaryDirectory(prefix="finmaas-quantize-") as folder:
        source, target = Path(folder) / "parent.onnx", Path(folder) / "child.onnx"
        source.write_bytes(data)
        if mode == "dynamic":
            quantize_dynamic(
                source, target, op_types_to_quantize=list(DENSE_OPS), weight_type=QuantType.QInt8
            )
            facts: dict[str, Any] = {}
        else:
            rows = x_calibration[:CALIBRATION_ROWS]
            quantize_static(
                source,
                target,
                _Calibration(model.graph.input[0].name, rows),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(DENSE_OPS),
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
            facts = {"calibration_rows": len(rows), "calibration": "minmax"}
        quantised = target.read_bytes()
    return quantised, {"mode": mode, "weights": "int8", "dense_layers": len(dense), **facts}


def _float16(model: onnx.ModelProto) -> bytes:
    from onnxconverter_common.float16 import convert_float_to_float16

    with warnings.catch_warnings():  # weights below float16's range become its smallest
        warnings.simplefilter("ignore", UserWarning)
        half = convert_float_to_float16(model, keep_io_types=True)
    return bytes(half.SerializeToString())


class _Calibration:
    """Batches of reference rows, read once by ``quantize_static`` (the
    ``CalibrationDataReader`` protocol)."""

    def __init__(self, input_name: str, rows: NDArray[np.float64]) -> None:
        batches = [
            {input_name: rows[i : i + CALIBRATION_BATCH].astype(np.float32)}
            for i in range(0, len(rows), CALIBRATION_BATCH)
        ]
        self._batches = iter(batches)

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        return next(self._batches, None)
