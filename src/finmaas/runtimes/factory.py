"""The runtime of each format: build a :class:`Predictor` and load an artifact into it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from finmaas.errors import NotSupported
from finmaas.runtimes.base import Predictor
from finmaas.runtimes.formats import ModelFormat
from finmaas.runtimes.lightgbm import LightGBMPredictor
from finmaas.runtimes.onnx import OnnxPredictor
from finmaas.runtimes.pickle import PicklePredictor
from finmaas.runtimes.skops import SkopsPredictor
from finmaas.runtimes.xgboost import XGBoostPredictor
from finmaas.schema.signature import ModelSignature

RuntimeFactory = Callable[[ModelSignature, Mapping[str, object]], Predictor]

RUNTIMES: Mapping[ModelFormat, RuntimeFactory] = MappingProxyType(
    {
        ModelFormat.ONNX: OnnxPredictor.from_options,
        ModelFormat.LIGHTGBM: LightGBMPredictor.from_options,
        ModelFormat.XGBOOST_JSON: XGBoostPredictor.json_from_options,
        ModelFormat.XGBOOST_UBJ: XGBoostPredictor.ubj_from_options,
        ModelFormat.SKOPS: SkopsPredictor.from_options,
    }
)
"""The safe formats' runtimes; pickle is built apart, because it needs ``allow_pickle``."""


def create_predictor(
    fmt: ModelFormat,
    signature: ModelSignature,
    *,
    allow_pickle: bool = False,
    options: Mapping[str, object] | None = None,
) -> Predictor:
    """Build the (not yet loaded) predictor for ``fmt``; ``options`` are runtime specific.

    ``onnx`` takes ``threads`` and ``output``; ``lightgbm`` and ``xgboost-*``
    take ``threads``. Pickle is refused on load unless ``allow_pickle``.
    """
    options = options or {}
    if fmt is ModelFormat.LLM_ENDPOINT:
        raise NotSupported(
            "this version is an LLM endpoint (llm-endpoint): it is served by the OpenAI-"
            "compatible routes, not by the tabular data plane (predict, V1, V2, MLflow, gRPC)"
        )
    if fmt is ModelFormat.PICKLE:
        return PicklePredictor.from_options(signature, options, allow_pickle=allow_pickle)
    return RUNTIMES[fmt](signature, options)


def load_predictor(
    data: bytes,
    fmt: ModelFormat,
    signature: ModelSignature,
    *,
    allow_pickle: bool = False,
    options: Mapping[str, object] | None = None,
) -> Predictor:
    """Build the predictor for ``fmt`` and load ``data`` (already digest-verified) into it."""
    predictor = create_predictor(fmt, signature, allow_pickle=allow_pickle, options=options)
    predictor.load(data)
    return predictor
