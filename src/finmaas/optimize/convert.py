"""Conversion of a LightGBM, XGBoost or scikit-learn version to ONNX.

LightGBM and XGBoost go through onnxmltools, scikit-learn through skl2onnx;
classifiers are exported without the ZipMap, so the graph returns the
probability matrix ONNX Runtime serves. :func:`convert` then scores the
reference rows with both and refuses a graph whose scores differ from the
original's by more than :data:`TOLERANCE` anywhere: tree thresholds become
float32 in ONNX, and a value that falls between the two roundings takes the
other branch, which this check catches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from finmaas.errors import Invalid
from finmaas.runtimes import ModelFormat, load_predictor
from finmaas.runtimes.skops import SkopsPredictor
from finmaas.schema import ModelSignature

TOLERANCE = 1e-5
CONVERTIBLE = (
    ModelFormat.LIGHTGBM,
    ModelFormat.XGBOOST_JSON,
    ModelFormat.XGBOOST_UBJ,
    ModelFormat.SKOPS,
)


def convert(
    data: bytes, fmt: ModelFormat, signature: ModelSignature, x: NDArray[np.float64]
) -> tuple[bytes, dict[str, Any]]:
    """The ONNX bytes of a model, checked on the rows ``x`` (encoded)."""
    if fmt is ModelFormat.ONNX:
        raise Invalid("the version is ONNX already; nothing to convert")
    if fmt not in CONVERTIBLE:
        raise Invalid(f"cannot convert a {fmt} model; convertible are LightGBM, XGBoost, skops")
    if any(f.dtype == "string" for f in signature.inputs):
        raise Invalid("cannot convert a model with text inputs: ONNX graphs here take numbers")
    width = len(signature.inputs)
    try:
        if fmt is ModelFormat.LIGHTGBM:
            model, tool = _from_lightgbm(data, width), "onnxmltools"
        elif fmt is ModelFormat.SKOPS:
            model, tool = _from_sklearn(data, signature, width), "skl2onnx"
        else:
            model, tool = _from_xgboost(data, width), "onnxmltools"
    except Invalid:
        raise
    except Exception as exc:  # the converters raise anything from RuntimeError to KeyError
        raise Invalid(f"the {fmt} model could not be converted to ONNX: {exc}") from None
    converted = model.SerializeToString()
    original = load_predictor(data, fmt, signature).predict(x)
    try:
        scored = load_predictor(converted, ModelFormat.ONNX, signature).predict(x)
    except Exception as exc:
        raise Invalid(f"the converted ONNX graph does not serve: {exc}") from None
    gap = float(np.max(np.abs(np.asarray(scored, dtype=np.float64) - original)))
    if not gap <= TOLERANCE:
        row = int(np.argmax(np.abs(np.asarray(scored, dtype=np.float64) - original)))
        raise Invalid(
            f"the ONNX graph scores reference row {row} {gap:.3g} away from the {fmt} model, "
            f"over the {TOLERANCE:g} allowed; not registered"
        )
    return converted, {"converter": tool, "largest_difference": gap, "checked_rows": len(x)}


def _initial_types(width: int) -> list[tuple[str, Any]]:
    from onnxmltools.convert.common.data_types import FloatTensorType

    return [("input", FloatTensorType([None, width]))]


def _from_lightgbm(data: bytes, width: int) -> Any:
    import lightgbm
    import onnxmltools

    booster = lightgbm.Booster(model_str=data.decode())
    return onnxmltools.convert_lightgbm(booster, initial_types=_initial_types(width), zipmap=False)


def _from_xgboost(data: bytes, width: int) -> Any:
    import onnxmltools
    import xgboost

    booster = xgboost.Booster()
    booster.load_model(bytearray(data))
    # onnxmltools reads features by position (f0, f1, …): a model trained on a DataFrame
    # keeps its column names, in the signature's order. Categorical splits stay, as chains
    # of equality tests on the category codes, which are the signature's encoding.
    booster.feature_names = None
    return onnxmltools.convert_xgboost(booster, initial_types=_initial_types(width))


def _from_sklearn(data: bytes, signature: ModelSignature, width: int) -> Any:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    predictor = SkopsPredictor(signature)
    predictor.load(data)
    if predictor.reads_raw_frame:
        raise Invalid(
            "cannot convert a scikit-learn model fitted on the raw DataFrame (text categories): "
            "the ONNX graphs finmaas serves take one tensor of numbers. Serve it as it is, or "
            "fit it on finmaas.schema.encode_frame(signature, data), register that with "
            "trained_on_encoded=True and convert it"
        )
    estimator = predictor.estimator
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    return convert_sklearn(
        estimator,
        initial_types=[("input", FloatTensorType([None, width]))],
        options=options,
    )
